//! ONNX front end: the only module that sees protobuf types.
