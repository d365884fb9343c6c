//! Text and Graphviz DOT renderings of the graph.
