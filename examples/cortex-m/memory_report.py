#!/usr/bin/env python3
"""Flash and RAM of the linked Cortex-M firmware, from its ELF (Python standard library only).

usage: memory_report.py FIRMWARE.elf [STACK_HIGH_WATER_BYTES]

Flash = every allocated section loaded from the image (.vector_table, .text, .rodata, .data's
initial values), split into code, the model's weights (the generated `WEIGHTS` static), the
embedded test set and the rest. RAM = .data + .bss + .uninit, split into the arena (`ARENA`) and
everything else, plus the stack high-water mark measured on the target when given.
"""
import struct
import sys


def sections_and_symbols(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        sys.exit(f"error: {path} is not a little-endian ELF32 file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    heads = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = heads[shstrndx]
    name = lambda off, tab: data[tab[4] + off:data.index(b"\0", tab[4] + off)].decode()
    sections = {name(h[0], strtab): h for h in heads}
    symbols = []
    for h in heads:
        if h[1] != 2:  # SHT_SYMTAB
            continue
        names = heads[h[6]]
        for off in range(h[4], h[4] + h[5], 16):
            st_name, value, size, info, _, shndx = struct.unpack_from("<IIIBBH", data, off)
            symbols.append((name(st_name, names), value, size))
    return sections, symbols


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sections, symbols = sections_and_symbols(sys.argv[1])
    size = lambda s: sections[s][5] if s in sections else 0

    def symbol(part):
        found = [(n, sz) for n, _, sz in symbols if part in n and sz > 0]
        if len(found) != 1:
            sys.exit(f"error: expected one symbol matching {part!r}, found {found}")
        return found[0][1]

    code = size(".vector_table") + size(".text")
    weights = symbol("7WEIGHTS")
    images = symbol("6IMAGES")
    rodata_rest = size(".rodata") - weights - images
    data_init = size(".data")
    flash = code + size(".rodata") + data_init
    arena = symbol("5ARENA")
    statics = size(".data") + size(".bss") + size(".uninit")
    rows = [
        ("flash", "code (.vector_table + .text)", code),
        ("flash", "weights (WEIGHTS, in .rodata, read in place)", weights),
        ("flash", "test images (IMAGES, demo data)", images),
        ("flash", "other .rodata + .data init", rodata_rest + data_init),
        ("flash", "total", flash),
        ("RAM", "arena (ARENA, SCRATCH_LEN floats, .bss)", arena),
        ("RAM", "other statics (.data + .bss + .uninit)", statics - arena),
    ]
    if len(sys.argv) == 3:
        stack = int(sys.argv[2])
        rows += [("RAM", "stack (high-water mark, painted and scanned)", stack),
                 ("RAM", "total", statics + stack)]
    print("| memory | part | bytes | KiB |")
    print("|---|---|---:|---:|")
    for kind, part, n in rows:
        print(f"| {kind} | {part} | {n} | {n / 1024:.1f} |")


if __name__ == "__main__":
    main()
