#!/usr/bin/env python3
"""Writes the binary seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make_seeds.py [CORPUS_DIR]

Every seed is built here from the formats' specifications (nothing is copied from a real
binary, core or trace), small (a few KiB), and deterministic, so rerunning this rewrites
the same bytes:

  elf/        synthetic Go executables: go1.26 with .go.module, go1.22 with .symtab,
              go1.22 stripped (the moduledata scan), a go1.24 noswissmap PIE whose pointers
              live only in R_X86_64_RELATIVE relocations (lld style), one without section
              headers (magic scans), and bare .go.buildinfo blobs (both formats)
  pclntab/    bare tables in fuzz_pclntab's form (version byte, u32 split, pclntab, gofunc):
              go1.20+ and go1.18/1.19 layouts with an inline tree; plus two of the ELFs
  trace/      gort traces (docs/trace-format.md): complete with map, sync and go-start
              sites, stacks, keys and goids; one with a heap scan record and an unknown
              record; one cut short (no summary)
  core_file/  x86-64 ELF cores in the kernel's layout: two threads, NT_PRPSINFO,
              NT_SIGINFO, NT_AUXV, NT_FILE, segments dumped, partly dumped, not dumped

perf_script/ seeds are text files written by hand (not generated). Files named crash-*
are inputs a fuzz target once failed on, kept as the fuzzer wrote them (regression
seeds; regress-* ones are rebuilt here). The fuzz targets' header comments say which seeds
tests/e2e/test_fuzz.py adds at test time (real_seeds() below, from a built sample).
"""
import json
import re
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


# --- pclntab ------------------------------------------------------------------------------

def uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag32(v: int) -> int:
    return ((v << 1) ^ (v >> 31)) & 0xFFFFFFFF


def pcvalue_table(runs) -> bytes:
    """(value, pc length) runs, values zig-zag deltas from -1, ended by a 0 byte."""
    out, prev = bytearray(), -1
    for v, n in runs:
        out += uvarint(zigzag32(v - prev)) + uvarint(n)
        prev = v
    return bytes(out + b"\0")


class Func:
    def __init__(self, name, off, length, file, lines, sp=None, inline=None):
        self.name, self.off, self.len, self.file = name, off, length, file
        self.lines, self.sp = lines, sp or [(0, length)]
        # inline: (callee name, parentPc, callee line, [(tree index or -1, pc length)])
        self.inline = inline


def pclntab_with_tables(hdr, names, cutab, filetab, pctab, pcln):
    """The 72-byte Go 1.20+ pclntab header HDR followed by its five tables, each table's
    offset written into the header (runtime/symtab.go: pcHeader), padded to 8 bytes."""
    out = bytearray(hdr)
    for field, part in ((32, names), (40, cutab), (48, filetab), (56, pctab), (64, pcln)):
        struct.pack_into("<Q", out, field, len(out))
        out += part
    while len(out) % 8:
        out.append(0)
    return out


def pclntab(funcs, files, old=False, text_start=0):
    """A pcHeader-first table (runtime/symtab.go): go1.20+ (magic 0xfffffff1, 44-byte
    _func, 16-byte inlinedCall) or go1.18/1.19 (0xfffffff0, 40, 20). Returns (table, gofunc)."""
    names, gofunc = bytearray(), bytearray()

    def name(s):
        o = len(names)
        names.extend(s.encode() + b"\0")
        return o

    filetab, cutab = bytearray(), bytearray()
    for f in files:
        cutab += struct.pack("<I", len(filetab))
        filetab += f.encode() + b"\0"
    pctab = bytearray(b"\0")  # offset 0: no table

    def table(runs):
        o = len(pctab)
        pctab.extend(pcvalue_table(runs))
        return o

    func_size = 40 if old else 44
    pcln = bytearray(8 * (len(funcs) + 1))
    for i, f in enumerate(funcs):
        nameoff = name(f.name)
        pcfile = table([(f.file, f.len)])
        pcln_t = table(f.lines)
        pcsp = table(f.sp)
        pcdata, funcdata = [], []
        if f.inline:
            callee, parent_pc, line, runs = f.inline
            pcdata = [0, 0, table(runs)]          # PCDATA_InlTreeIndex = 2
            funcdata = [0xFFFFFFFF] * 3 + [len(gofunc)]  # FUNCDATA_InlTree = 3
            if old:  # parent i16, funcID u8, _ u8, file i32, line i32, func_ i32, parentPc i32
                gofunc += struct.pack("<hBBiiii", -1, 0, 0, f.file, line, name(callee), parent_pc)
            else:    # funcID u8, _ [3]u8, nameOff i32, parentPc i32, startLine i32
                gofunc += struct.pack("<B3xiii", 0, name(callee), parent_pc, line - 1)
        off = len(pcln)
        fields = [f.off, nameoff, 0, 0, pcsp, pcfile, pcln_t, len(pcdata), 0]
        if not old:
            fields.append(f.lines[0][0])  # startLine
        pcln += struct.pack(f"<{len(fields)}I", *fields) + bytes([0, 0, 0, len(funcdata)])
        assert len(pcln) - off == func_size
        pcln += b"".join(struct.pack("<I", v) for v in pcdata + funcdata)
        struct.pack_into("<II", pcln, 8 * i, f.off, off)
    end = funcs[-1].off + funcs[-1].len
    struct.pack_into("<II", pcln, 8 * len(funcs), end, 0)

    hdr = bytearray(72)
    struct.pack_into("<IBBBBQQQ", hdr, 0, 0xFFFFFFF0 if old else 0xFFFFFFF1, 0, 0, 1, 8, len(funcs), len(files),
                     text_start)
    out = pclntab_with_tables(hdr, names, cutab, filetab, pctab, pcln)
    return bytes(out), bytes(gofunc), {"funcnametab": len(names), "cutab": len(cutab) // 4,
                                       "filetab": len(filetab), "pctab": len(pctab), "pclntable": len(pcln),
                                       "ftab": len(funcs) + 1}


def sample_funcs():
    """Functions named as GoBinary and the fuzz targets look them up."""
    return [
        Func("runtime.main", 0x00, 0x20, 0, [(10, 0x10), (11, 0x10)], sp=[(0, 4), (24, 0x1C)]),
        Func("main.main", 0x20, 0x40, 1, [(20, 0x10), (30, 0x10), (20, 0x20)], sp=[(0, 4), (40, 0x3C)],
             inline=("main.inl", 0x08, 30, [(-1, 0x10), (0, 0x10), (-1, 0x20)])),
        Func("runtime.mapassign_fast64", 0x60, 0x20, 0, [(600, 0x20)]),
        Func("internal/runtime/maps.(*Map).Delete", 0x80, 0x20, 2, [(70, 0x20)]),
        Func("runtime.(*hmap).growing", 0xA0, 0x10, 0, [(80, 0x10)]),
    ]


FILES = ["/usr/lib/go/src/runtime/proc.go", "/src/main.go", "/usr/lib/go/src/internal/runtime/maps/map.go"]


# --- ELF executables -----------------------------------------------------------------------

def buildinfo(version: str, settings=()) -> bytes:
    """.go.buildinfo in the Go 1.18+ inline-string format (flags & 2)."""
    head = b"\xff Go buildinf:" + bytes([8, 2])
    head += b"\0" * (32 - len(head))
    sentinel_a = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
    sentinel_b = bytes.fromhex("f932433186182072008242104116d8f2")
    mod = "path\tgort.test/sample\nmod\tgort.test/sample\t(devel)\t\n"
    mod += "".join(f"build\t{k}={v}\n" for k, v in settings)
    modinfo = sentinel_a + mod.encode() + sentinel_b
    out = head + uvarint(len(version)) + version.encode() + uvarint(len(modinfo)) + modinfo
    return out + b"\0" * (-len(out) % 16)


def buildinfo_pointer_format() -> bytes:
    """The pre-1.18 format: two pointers to Go string headers (unreadable without an ELF)."""
    head = b"\xff Go buildinf:" + bytes([8, 0])
    return head + struct.pack("<QQ", 0x4C2A10, 0x4C2A20)


MD_SIZE = 592  # sizeof(runtime.moduledata) in Go 1.26; every field gort reads lies below 584


class Elf:
    """Sections laid out in three PT_LOADs (text RX, rodata R, data RW), file offset =
    vaddr - base, so that the mapping is trivial and the file has no padding pages."""

    def __init__(self, base):
        self.base = base
        self.body = bytearray(b"\0" * 0x200)  # ELF header + program headers live here
        self.sections = []                     # (name, type, flags, addr, off, size, link, info, entsize)
        self.segments = []                     # (type, flags, off, size)

    def add(self, name, data, sh_type=1, flags=2, align=16):
        while len(self.body) % align:
            self.body.append(0)
        off = len(self.body)
        self.body += data
        addr = self.base + off if flags & 2 else 0
        self.sections.append([name, sh_type, flags, addr, off, len(data), 0, 0, 0])
        return addr, off

    def start_segment(self):
        """Segments start 64-byte aligned (the kernel's are page-aligned; scans step by 8)."""
        while len(self.body) % 64:
            self.body.append(0)
        return len(self.body)

    def segment(self, flags, start_off):
        self.segments.append((1, flags, start_off, len(self.body) - start_off))

    def write(self, entry, et_dyn=False, with_sections=True, relocs=()):
        body = self.body
        if relocs:
            data = b"".join(struct.pack("<QQq", off, 8, val) for off, val in relocs)  # R_X86_64_RELATIVE
            self.add(".rela.dyn", data, sh_type=4, flags=2, align=8)
            self.sections[-1][8] = 24
        shstr = bytearray(b"\0")
        name_off = []
        for s in self.sections:
            name_off.append(len(shstr))
            shstr += s[0].encode() + b"\0"
        name_off.append(len(shstr))
        shstr += b".shstrtab\0"
        shstr_off = len(body)
        body += shstr
        while len(body) % 8:
            body.append(0)
        shoff = len(body)
        shnum = 0
        if with_sections:
            sh = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
            for i, (name, t, fl, addr, off, size, link, info, ent) in enumerate(self.sections):
                sh.append(struct.pack("<IIQQQQIIQQ", name_off[i], t, fl, addr, off, size, link, info, 8, ent))
            sh.append(struct.pack("<IIQQQQIIQQ", name_off[-1], 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0))
            body += b"".join(sh)
            shnum = len(sh)
        ph = b"".join(struct.pack("<IIQQQQQQ", t, fl, off, self.base + off, self.base + off, size, size, 0x10)
                      for t, fl, off, size in self.segments)
        eh = bytearray(b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9)
        eh += struct.pack("<HHIQQQIHHHHHH", 3 if et_dyn else 2, 62, 1, entry, 64, shoff if shnum else 0, 0, 64, 56,
                          len(self.segments), 64 if shnum else 0, shnum, shnum - 1 if shnum else 0)
        body[0:len(eh)] = eh
        body[64:64 + len(ph)] = ph
        assert 64 + len(ph) <= 0x200
        return bytes(body)


def go_elf(version, settings=(), *, pie=False, symtab=False, go_module=False, with_sections=True,
           zero_pointers=False, real=None):
    """A Go executable around sample_funcs()' table, or REAL (a compact_pclntab() result:
    its table, inline trees, code and build info) in place of the synthetic parts."""
    base = 0 if pie else 0x400000
    e = Elf(base)
    funcs = [] if real else sample_funcs()
    if real:
        text = real["text"]
    else:
        # .text: int3 padding with a RET at each function's end.
        text = bytearray(b"\xcc" * (funcs[-1].off + funcs[-1].len))
        for f in funcs:
            text[f.off + f.len - 1] = 0xC3
    text_len = len(text)
    t0 = e.start_segment()
    text_addr, _ = e.add(".text", bytes(text), flags=6, align=32)
    e.segment(5, t0)
    # rodata: the pclntab, gofunc (inline trees), the build ID note.
    r0 = e.start_segment()
    if real:
        tab, gofunc, lens = real["tab"], real["gofunc"], real["lens"]
    else:
        tab, gofunc, lens = pclntab(funcs, FILES, text_start=0 if version >= "go1.26" else text_addr)
    pcln_addr, _ = e.add(".data.rel.ro.gopclntab" if pie else ".gopclntab", tab, align=32)
    gofunc_addr, _ = e.add(".go.func", gofunc + b"\0" * 16, align=8)
    note = struct.pack("<III", 4, 20, 4) + b"Go\0\0" + b"fuzzseedbuildid/0001"
    e.add(".note.go.buildid", note, sh_type=7, align=4)
    e.segment(4, r0)
    # data: build info, moduledata (.go.module in 1.26, else .noptrdata).
    d0 = e.start_segment()
    e.add(".go.buildinfo", real["buildinfo"] if real else buildinfo(version, settings), flags=3, align=16)
    hdr = struct.unpack_from("<5Q", tab, 32)  # funcname, cu, filetab, pctab, pcln offsets
    md = bytearray(MD_SIZE)
    pointers = {}

    def ptr(off, value):
        pointers[off] = value
        if not zero_pointers:
            struct.pack_into("<Q", md, off, value)

    ptr(0, pcln_addr)
    for field, (hoff, n) in zip((8, 32, 56, 80, 104), zip(hdr, (lens["funcnametab"], lens["cutab"], lens["filetab"],
                                                                   lens["pctab"], lens["pclntable"]))):
        ptr(field, pcln_addr + hoff)
        struct.pack_into("<QQ", md, field + 8, n, n)
    ptr(128, pcln_addr + hdr[4])                      # ftab: the functab at the start of pclntable
    struct.pack_into("<QQ", md, 136, lens["ftab"], lens["ftab"])
    for field, value in ((160, text_addr), (168, text_addr + text_len), (176, text_addr), (184, text_addr + text_len),
                         (320, gofunc_addr)):
        ptr(field, value)
    md_name = ".go.module" if go_module else ".noptrdata"
    md_addr, md_off = e.add(md_name, bytes(md), flags=3, align=32)
    e.segment(6, d0)
    if symtab:
        strtab = bytearray(b"\0")
        syms = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]
        for sym, addr, size, typ in (("runtime.firstmoduledata", md_addr, MD_SIZE, 1), ("runtime.pclntab", pcln_addr,
                                                                                        len(tab), 1),
                                     *((f.name, text_addr + f.off, f.len, 2) for f in funcs)):
            syms.append(struct.pack("<IBBHQQ", len(strtab), (1 << 4) | typ, 0, 1, addr, size))
            strtab += sym.encode() + b"\0"
        e.add(".symtab", b"".join(syms), sh_type=2, flags=0, align=8)
        e.sections[-1][6] = len(e.sections) + 1  # sh_link: .strtab, the next section (index +1 for the null one)
        e.sections[-1][8] = 24
        e.add(".strtab", bytes(strtab), sh_type=3, flags=0, align=1)
    relocs = [(md_addr + off, v) for off, v in sorted(pointers.items())] if pie else ()
    return e.write(text_addr + 0x20, et_dyn=pie, with_sections=with_sections, relocs=relocs)


# --- traces (docs/trace-format.md) ------------------------------------------------------------

def record(tag: bytes, payload: bytes, count=0) -> bytes:
    frame = tag + struct.pack("<II", len(payload), count)
    return frame + struct.pack("<I", zlib.crc32(frame + payload)) + payload


def zigzag64(v: int) -> int:
    return ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF


def encode_block(header, events):
    """One EVNT payload (the state of BlockEncoder: tables fresh per block)."""
    out = bytearray()
    prev_time = header["start_ns"]
    threads, cur, gs, maps, stacks = {}, None, [], [], []
    state = {}
    for ev in events:
        flags, body = 0, bytearray()
        body += uvarint(zigzag64(ev["time"] - prev_time))
        prev_time = ev["time"]
        body += uvarint(ev["site"])
        if cur is None or cur != ev["tid"]:
            flags |= 1
            if ev["tid"] in threads:
                body += uvarint(threads[ev["tid"]])
            else:
                threads[ev["tid"]] = len(threads)
                body += uvarint(threads[ev["tid"]]) + uvarint(ev["tid"])
                state[ev["tid"]] = {"cpu": 0, "g": 0, "map": 0}
            cur = ev["tid"]
        st = state[cur]
        if ev.get("cpu", 0) != st["cpu"]:
            flags |= 2
            body += uvarint(ev["cpu"])
            st["cpu"] = ev["cpu"]
        for bit, key, table in ((4, "g", gs), (8, "map", maps)):
            v = ev.get(key, 0)
            if v != st[key]:
                flags |= bit
                if v in table:
                    body += uvarint(table.index(v))
                else:
                    body += uvarint(len(table)) + uvarint(v)
                    table.append(v)
                st[key] = v
        if ev.get("goid"):
            flags |= 0x40
            body += uvarint(ev["goid"])
        if "key" in ev:
            flags |= 0x10
            body += uvarint(zigzag64(ev["key"]))
        if ev.get("stack"):
            flags |= 0x20
            stack = tuple(ev["stack"])
            if stack in stacks:
                body += uvarint(stacks.index(stack))
            else:
                body += uvarint(len(stacks)) + uvarint(len(stack))
                prev = header["sites"][ev["site"]]["pc"]
                for pc in stack:
                    body += uvarint(zigzag64(pc - prev))
                    prev = pc
                stacks.append(stack)
        out += bytes([flags]) + body
    return bytes(out)


def trace(header, blocks, summary=None, extra=()):
    out = bytearray(b"GORTTRC\0" + struct.pack("<I", 1))
    out += record(b"HEAD", json.dumps(header, separators=(",", ":")).encode())
    n = 0
    for b in blocks:
        if isinstance(b, tuple):  # (tag, payload): a non-event record
            out += record(*b)
            continue
        out += record(b"EVNT", encode_block(header, b), len(b))
        n += len(b)
    for r in extra:
        out += r
    if summary is not None:
        summary = dict(summary, events=n)
        out += record(b"SUMM", json.dumps(summary, separators=(",", ":")).encode())
    return bytes(out)


def site(kind, function, op, pc, backend="hw"):
    return {"kind": kind, "function": function, "op": op, "pc": pc, "backend": backend}


def map_trace_header():
    return {"executable": "/tmp/concurrent_writes", "build_id": "fuzzseedbuildid/0001", "go_version": "go1.26.1",
            "map_impl": "swiss", "slide": 0, "pid": 4242, "command": ["/tmp/concurrent_writes", "-n", "3"],
            "start_ns": 1_000_000_000, "stack_depth": 8,
            "sites": [site("entry", "runtime.mapassign_fast64", "assign", 0x4A0B80),
                      site("write-begin", "runtime.mapassign_fast64", "assign", 0x4A0BC4),
                      site("write-end", "runtime.mapassign_fast64", "assign", 0x4A0CD0, "uprobe"),
                      site("return", "runtime.mapassign_fast64", "assign", 0x4A0CE1),
                      site("throw", "runtime.fatal", "", 0x438E40),
                      site("go-start", "runtime.newproc1", "", 0x441200, "uprobe"),
                      site("go-exit", "runtime.goexit1", "", 0x441F00, "uprobe"),
                      site("go-create", "runtime.newproc1", "", 0x441180, "uprobe")]}


def map_events(t0):
    g1, g2, m = 0xC000006000, 0xC0000061C0, 0xC000012340
    stack_a = [0x4A0BC4, 0x49F2E5, 0x49F3A0, 0x4411E1]
    stack_b = [0x4A0BC4, 0x49F4E5, 0x49F5A0, 0x4411E1]
    return [
        {"time": t0 + 100, "site": 7, "tid": 100, "cpu": 0, "g": 0xC000002000},
        {"time": t0 + 150, "site": 5, "tid": 100, "cpu": 0, "g": g1, "goid": 6},
        {"time": t0 + 160, "site": 5, "tid": 101, "cpu": 1, "g": g2, "goid": 7},
        {"time": t0 + 1000, "site": 1, "tid": 100, "cpu": 0, "g": g1, "map": m, "key": 17, "stack": stack_a},
        {"time": t0 + 1200, "site": 1, "tid": 101, "cpu": 1, "g": g2, "map": m, "key": -3, "stack": stack_b},
        {"time": t0 + 1900, "site": 2, "tid": 100, "cpu": 0, "g": g1, "map": m, "stack": [0x4A0CD0, 0x49F2E5]},
        {"time": t0 + 2100, "site": 2, "tid": 101, "cpu": 1, "g": g2, "map": m, "stack": [0x4A0CD0, 0x49F4E5]},
        {"time": t0 + 2500, "site": 1, "tid": 100, "cpu": 1, "g": g1, "map": m, "key": 18, "stack": stack_a},
        {"time": t0 + 2400, "site": 4, "tid": 101, "cpu": 0, "g": g2, "map": 0, "stack": [0x438E40, 0x4A0C10]},
        {"time": t0 + 3000, "site": 6, "tid": 100, "cpu": 1, "g": g1},
    ]


def sync_trace_header():
    h = map_trace_header()
    h["sites"] = [site("write-begin", "runtime.mapassign_faststr", "assign", 0x4A1000),
                  site("write-end", "runtime.mapassign_faststr", "assign", 0x4A1100),
                  site("acquire", "sync.(*Mutex).Lock", "mutex.lock", 0x46A010, "uprobe"),
                  site("release", "sync.(*Mutex).Unlock", "mutex.unlock", 0x46A200, "uprobe"),
                  site("sync-call", "runtime.chanrecv1", "chan.recv", 0x40C000, "uprobe"),
                  site("sync-return", "runtime.chanrecv1", "chan.recv", 0x40C0F0, "uprobe"),
                  site("release", "sync.(*WaitGroup).Add", "wg.add", 0x46B000, "uprobe"),
                  site("map-read", "runtime.mapaccess1_faststr", "read", 0x4A2000, "uprobe"),
                  site("gc-mark-termination", "runtime.gcMarkTermination", "", 0x420000, "uprobe"),
                  site("convert", "runtime.checkptrArithmetic", "convert", 0x409000, "uprobe"),
                  site("lost", "(gort: ring full)", "", 0, "derived")]
    h["stack_depth"] = 0
    return h


def sync_events(t0):
    mu, ch, wg, m = 0xC000014000, 0xC000020000, 0xC000016000, 0xC000018000
    return [
        {"time": t0 + 10, "site": 2, "tid": 7, "g": 0xC000007000, "map": mu, "goid": 1},
        {"time": t0 + 20, "site": 0, "tid": 7, "g": 0xC000007000, "map": m},
        {"time": t0 + 30, "site": 1, "tid": 7, "g": 0xC000007000, "map": m},
        {"time": t0 + 40, "site": 3, "tid": 7, "g": 0xC000007000, "map": mu},
        {"time": t0 + 50, "site": 4, "tid": 8, "cpu": 1, "g": 0xC000008000, "map": ch},
        {"time": t0 + 60, "site": 6, "tid": 7, "map": wg, "key": -1},
        {"time": t0 + 70, "site": 5, "tid": 8, "cpu": 1, "g": 0xC000008000, "map": 0},
        {"time": t0 + 80, "site": 7, "tid": 8, "cpu": 1, "map": m},
        {"time": t0 + 90, "site": 8, "tid": 7},
        {"time": t0 + 95, "site": 9, "tid": 7, "key": 0xC000100010, "stack": [0x409000, 0x49F111]},
        {"time": t0 + 99, "site": 10, "tid": 8, "cpu": 1},
    ]


# --- core files ----------------------------------------------------------------------------------

def note(name: str, ntype: int, desc: bytes) -> bytes:
    n = name.encode() + b"\0"
    return (struct.pack("<III", len(n), len(desc), ntype) + n + b"\0" * (-len(n) % 4) + desc +
            b"\0" * (-len(desc) % 4))


def prstatus(tid, sig, regs) -> bytes:
    d = bytearray(336)
    struct.pack_into("<H", d, 12, sig)
    struct.pack_into("<i", d, 32, tid)
    order = ["r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
             "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base"]
    for i, r in enumerate(order):
        struct.pack_into("<Q", d, 112 + 8 * i, regs.get(r, 0))
    return bytes(d)


def core(loads, notes) -> bytes:
    """ET_CORE: header, PT_NOTE then PT_LOADs (vaddr, bytes, memsz, flags)."""
    notebytes = b"".join(notes)
    phnum = 1 + len(loads)
    off = 64 + 56 * phnum
    phs = [struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(notebytes), 0, 4)]
    data = bytearray(notebytes)
    off += len(notebytes)
    for vaddr, b, memsz, flags in loads:
        phs.append(struct.pack("<IIQQQQQQ", 1, flags, off, vaddr, 0, len(b), memsz, 0x1000))
        data += b
        off += len(b)
    eh = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    eh += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    return eh + b"".join(phs) + bytes(data)


def go_core(sig=6):
    stack = bytearray(256)
    struct.pack_into("<QQQ", stack, 0x80, 0xC000090F00, 0x401040, 0)  # a frame-pointer chain
    g = bytearray(64)
    struct.pack_into("<QQQ", g, 0, 0xC000090000, 0xC000091000, 0xC000090100)
    files = [(0x400000, 0x402000, 0, "/tmp/concurrent_writes"), (0x402000, 0x404000, 2, "/tmp/concurrent_writes")]
    nt_file = struct.pack("<QQ", len(files), 4096) + b"".join(struct.pack("<QQQ", s, e, o) for s, e, o, _ in files)
    nt_file += b"".join(p.encode() + b"\0" for *_, p in files)
    prpsinfo = bytearray(136)
    struct.pack_into("<i", prpsinfo, 24, 4242)
    prpsinfo[40:40 + 15] = b"concurrent_writ"
    prpsinfo[56:56 + 24] = b"/tmp/concurrent_writes 3"
    siginfo = struct.pack("<iii", sig, 0, -6) + b"\0" * 116
    auxv = struct.pack("<QQQQQQ", 3, 0x400040, 9, 0x401000, 0, 0)
    notes = [note("CORE", 1, prstatus(4242, sig, {"rip": 0x401010, "rsp": 0xC000090F80, "rbp": 0xC000090F80,
                                                  "r14": 0xC000006000, "fs_base": 0x7F0000001000})),
             note("CORE", 1, prstatus(4243, 0, {"rip": 0x401050, "rsp": 0xC000090F00, "r14": 0xC0000061C0})),
             note("CORE", 3, bytes(prpsinfo)), note("CORE", 0x53494749, siginfo), note("CORE", 6, auxv),
             note("CORE", 0x46494C45, nt_file), note("LINUX", 0x202, b"\0" * 32)]
    loads = [(0x400000, b"\x7fELF" + b"\0" * 60, 0x2000, 5),       # text: only the first page's head dumped
             (0xC000006000, bytes(g), 0x1000, 6),                  # heap: partly dumped (filesz < memsz)
             (0xC000090F00, bytes(stack), 0x100, 6),               # stack
             (0x7F0000000FF8, struct.pack("<Q", 0xC000006000), 8, 6)]  # TLS word below fs_base
    return core(loads, notes)


# --- seeds from a real Go binary (tests/e2e/test_fuzz.py, at test time) -------------------------

class GoFile:
    """The little of a real Go executable that compact_pclntab() needs."""

    def __init__(self, path):
        d = self.data = Path(path).read_bytes()
        shoff, = struct.unpack_from("<Q", d, 0x28)
        phoff, = struct.unpack_from("<Q", d, 0x20)
        phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHH", d, 0x38)
        hdrs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
        names = hdrs[shstrndx][4]
        self.sections = {d[names + h[0]:d.index(b"\0", names + h[0])].decode(): h for h in hdrs}
        self.loads = [struct.unpack_from("<IIQQQQQQ", d, phoff + i * 56) for i in range(phnum)]

    def section(self, name) -> bytes:
        h = self.sections[name]
        return self.data[h[4]:h[4] + h[5]]

    def go_version(self) -> str:
        """runtime.buildVersion: the first varint-prefixed string of .go.buildinfo (1.18+)."""
        bi = self.section(".go.buildinfo")
        assert bi[15] & 2 and bi[32] < 0x80, "not the Go 1.18+ inline-string build info"
        return bi[33:33 + bi[32]].decode()

    def at(self, addr, n=None) -> bytes:
        """Bytes at a virtual address, to the end of its PT_LOAD (or N of them)."""
        for t, _, off, vaddr, _, filesz, _, _ in self.loads:
            if t == 1 and vaddr <= addr < vaddr + filesz:
                end = off + filesz if n is None else off + addr - vaddr + n
                return self.data[off + addr - vaddr:end]
        raise ValueError(f"{addr:#x} is not file-backed")


def _table_end(pctab, off):
    """(end offset, values) of the pcvalue table at OFF (decode_pcvalue's walk)."""
    p, val, values, first = off, -1, [], True
    while True:
        if pctab[p] == 0 and not first:
            return p + 1, values
        for k in range(2):
            v, shift = 0, 0
            while True:
                c = pctab[p]
                p += 1
                v |= (c & 0x7F) << shift
                shift += 7
                if c < 0x80:
                    break
            if k == 0:
                val += (v >> 1) ^ -(v & 1)
                values.append(val)
        first = False


def compact_pclntab(binary, count=48, near="main."):
    """A small pclntab with real content: COUNT consecutive functions of BINARY (Go 1.20+
    format) starting at the first whose name starts with NEAR, re-linked into fresh
    regions holding only what they reference (names, CU file lists, pcvalue tables, inline
    trees), their entries rebased to a text at 0x401000. Returns the parts go_elf(real=)
    and the bare fuzz_pclntab form take: tab, gofunc, lens, text, buildinfo, version."""
    g = GoFile(binary)
    tab = g.section(".gopclntab")
    magic, = struct.unpack_from("<I", tab, 0)
    assert magic == 0xFFFFFFF1, f"{binary}: pclntab magic {magic:#x} is not the Go 1.20+ format"
    nfunc, _, text_start = struct.unpack_from("<QQQ", tab, 8)
    o_name, o_cu, o_file, o_pc, o_pcln = struct.unpack_from("<5Q", tab, 32)
    pclntable = tab[o_pcln:]
    gofunc_src = b""
    if ".go.module" in g.sections:  # Go 1.26: firstmoduledata, gofunc at 320
        gofunc_addr, = struct.unpack_from("<Q", g.section(".go.module"), 320)
        gofunc_src = g.at(gofunc_addr)
    text_base = struct.unpack_from("<Q", g.section(".go.module"), 176)[0] if ".go.module" in g.sections else text_start

    def cstr(base, off):
        return tab[base + off:tab.index(b"\0", base + off)]

    def entryoff(i):
        return struct.unpack_from("<I", pclntable, 8 * i)[0]

    first = next(i for i in range(nfunc)
                 if cstr(o_name, struct.unpack_from("<i", pclntable, struct.unpack_from("<I", pclntable, 8 * i + 4)[0] + 4)[0])
                 .startswith(near.encode()))
    first = max(0, min(first, nfunc - count))
    chosen = range(first, min(nfunc, first + count))
    base_off = entryoff(first)

    names, cutab, filetab, pctab, gofunc = bytearray(), bytearray(), bytearray(), bytearray(b"\0"), bytearray()
    name_map, file_map, table_map = {}, {}, {0: 0}

    def name(off):
        if off not in name_map:
            name_map[off] = len(names)
            names.extend(cstr(o_name, off) + b"\0")
        return name_map[off]

    def table(off):
        """Copies the pcvalue table at OFF; returns (new offset, its values)."""
        if off == 0:
            return 0, []
        end, values = _table_end(tab, o_pc + off)
        if off not in table_map:
            table_map[off] = len(pctab)
            pctab.extend(tab[o_pc + off:end])
        return table_map[off], values

    funcs = bytearray()
    offsets = []
    for i in chosen:
        fo = struct.unpack_from("<I", pclntable, 8 * i + 4)[0]
        f = bytearray(pclntable[fo:fo + 44])
        npcdata, = struct.unpack_from("<I", f, 28)
        nfuncdata = f[43]
        pcdata = list(struct.unpack_from(f"<{npcdata}I", pclntable, fo + 44))
        funcdata = list(struct.unpack_from(f"<{nfuncdata}I", pclntable, fo + 44 + 4 * npcdata))
        struct.pack_into("<I", f, 0, entryoff(i) - base_off)
        struct.pack_into("<i", f, 4, name(struct.unpack_from("<i", f, 4)[0]))
        struct.pack_into("<I", f, 16, table(struct.unpack_from("<I", f, 16)[0])[0])
        pcfile, files = table(struct.unpack_from("<I", f, 20)[0])
        struct.pack_into("<I", f, 20, pcfile)
        struct.pack_into("<I", f, 24, table(struct.unpack_from("<I", f, 24)[0])[0])
        # This function's CU: the file indexes its pcfile table uses, in a fresh cutab run.
        cu_off, = struct.unpack_from("<I", f, 32)
        new_cu = len(cutab) // 4
        for k in range(max([v for v in files if v >= 0], default=-1) + 1):
            foff, = struct.unpack_from("<I", tab, o_cu + 4 * (cu_off + k))
            if foff != 0xFFFFFFFF and foff not in file_map:
                file_map[foff] = len(filetab)
                filetab.extend(cstr(o_file, foff) + b"\0")
            cutab += struct.pack("<I", 0xFFFFFFFF if foff == 0xFFFFFFFF else file_map[foff])
        struct.pack_into("<I", f, 32, new_cu)
        inl_values = []
        for k, off in enumerate(pcdata):
            pcdata[k], values = table(off)
            if k == 2:
                inl_values = values
        # funcdata: only the inline tree (FUNCDATA_InlTree = 3) is kept; gort reads no other.
        for k in range(nfuncdata):
            tree = funcdata[k] if k == 3 and gofunc_src and inl_values else 0xFFFFFFFF
            if tree != 0xFFFFFFFF:
                n = max(inl_values) + 1
                entries = bytearray(gofunc_src[tree:tree + 16 * n])
                for j in range(n):
                    struct.pack_into("<i", entries, 16 * j + 4, name(struct.unpack_from("<i", entries, 16 * j + 4)[0]))
                tree = len(gofunc)
                gofunc += entries
            funcdata[k] = tree
        offsets.append(len(funcs))
        funcs += f + struct.pack(f"<{npcdata}I", *pcdata) + struct.pack(f"<{nfuncdata}I", *funcdata)
    n = len(offsets)
    end_off = entryoff(first + n) - base_off
    ftab = b"".join(struct.pack("<II", entryoff(i) - base_off, 8 * (n + 1) + o) for i, o in zip(chosen, offsets))
    pcln = ftab + struct.pack("<II", end_off, 0) + funcs

    hdr = bytearray(tab[:72])
    struct.pack_into("<QQQ", hdr, 8, n, len(cutab) // 4, 0x401000 if text_start else 0)
    out = pclntab_with_tables(hdr, names, cutab, filetab, pctab, pcln)
    code_at = text_base + base_off
    return {"tab": bytes(out), "gofunc": bytes(gofunc), "text": g.at(code_at, end_off),
            "buildinfo": g.section(".go.buildinfo"), "version": g.go_version(),
            "lens": {"funcnametab": len(names), "cutab": len(cutab) // 4, "filetab": len(filetab),
                     "pctab": len(pctab), "pclntable": len(pcln), "ftab": n + 1}}


def bare_pclntab(version: str, tab: bytes, gofunc: bytes, text_from_header=False) -> bytes:
    """fuzz_pclntab's bare form: version byte, u32 split, the table, the gofunc bytes."""
    minor = int(re.match(r"go1\.(\d+)", version).group(1))
    b0 = (minor - 18) % 9 | (0x80 if text_from_header else 0)
    return bytes([b0]) + struct.pack("<I", len(tab)) + tab + gofunc


def real_seeds(stripped_binary):
    """{target: {name: bytes}}: seeds from a real Go binary, small enough to fuzz."""
    r = compact_pclntab(stripped_binary)
    elf = go_elf(r["version"], go_module=r["version"] >= "go1.26", real=r)
    return {"elf": {"real-buildinfo": r["buildinfo"], "real-compact": elf},
            "pclntab": {"real-compact": bare_pclntab(r["version"], r["tab"], r["gofunc"]), "real-compact-elf": elf}}


# --- main ----------------------------------------------------------------------------------------

def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"
    seeds = {}
    elf = seeds.setdefault("elf", {})
    elf["go126-gomodule"] = go_elf("go1.26.1", [("-compiler", "gc"), ("CGO_ENABLED", "0")], go_module=True)
    elf["go122-symtab"] = go_elf("go1.22.12", [("-race", "true"), ("-gcflags", "all=-d=checkptr")], symtab=True)
    elf["go122-stripped"] = go_elf("go1.22.12", [("-ldflags", '"-s -w"')])
    elf["go124-noswiss-pie-relocs"] = go_elf("go1.24.4 X:noswissmap", [("GOEXPERIMENT", "noswissmap"),
                                                                     ("-buildmode", "pie")], pie=True,
                                             zero_pointers=True)
    elf["go125-no-sections"] = go_elf("go1.25.3", with_sections=False)
    elf["buildinfo-go126"] = buildinfo("go1.26.1", [("GOEXPERIMENT", "greenteagc,jsonv2"), ("vcs.modified", "true")])
    elf["buildinfo-pointer-format"] = buildinfo_pointer_format()
    # Regression: fuzz_elf found GoVersion::parse overflowing an int on a long number.
    elf["regress-buildinfo-version-overflow"] = buildinfo("go1.26." + "6" * 40)

    pcl = seeds.setdefault("pclntab", {})
    for label, old, version_byte in (("go126", False, 8), ("go119", True, 1), ("go124-textstart", False, 0x80 | 4)):
        tab, gofunc, _ = pclntab(sample_funcs(), FILES, old=old, text_start=0x401000 if version_byte & 0x80 else 0)
        pcl[label] = bytes([version_byte]) + struct.pack("<I", len(tab)) + tab + gofunc
    pcl["elf-go126"] = elf["go126-gomodule"]
    pcl["elf-go124-pie"] = elf["go124-noswiss-pie-relocs"]

    tr = seeds.setdefault("trace", {})
    h = map_trace_header()
    t0 = h["start_ns"]
    ev = map_events(t0)
    end = {"end_ns": t0 + 5000, "lost": 0, "filtered": 0, "end_reason": "target killed by signal 2",
           "warnings": ["runtime.mapclone: no probe placed"]}
    tr["map-writes"] = trace(h, [ev[:6], ev[6:]], end)
    hs = sync_trace_header()
    scan = json.dumps({"time_ns": t0 + 96, "mark_ns": t0 + 90, "pause_ns": 1200, "stop_ns": 300,
                       "heap": {"arenas": 1}, "findings": [], "stats": {}, "notes": [], "seen": ["c000010000:c000100010"]})
    tr["sync-heapscan-unknown-record"] = trace(hs, [sync_events(t0), (b"HSCN", scan.encode())],
                                               dict(end, end_reason="stopped"),
                                               extra=[record(b"NEWR", b"a record from a newer writer")])
    tr["cut-short"] = trace(h, [ev[:4], ev[4:]])  # no summary: --partial only
    tr["empty"] = trace(dict(h, sites=[]), [], dict(end, end_reason="duration"))

    cf = seeds.setdefault("core_file", {})
    cf["go-sigabrt"] = go_core()
    cf["go-sigsegv-one-segment"] = core([(0x400000, b"\0" * 32, 0x1000, 5)],
                                        [note("CORE", 1, prstatus(99, 11, {"rip": 0x400010, "rsp": 0x400000}))])

    for target, files in seeds.items():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
    total = sum(len(b) for f in seeds.values() for b in f.values())
    print(f"{sum(len(f) for f in seeds.values())} seeds, {total} bytes, in {out}")


if __name__ == "__main__":
    main()
