# gort inside GDB: `source /path/to/gort/scripts/gort-gdb.py` (or put that line in ~/.gdbinit).
#
# Registers the `gort` prefix command with the LLDB plugin's subcommands (docs/gdb.md):
# goroutines, bt, map, ptr, heap scan/ptr, crash, info, version, break maps/wb/clear,
# watch map, record start/stop. The Go-aware work runs in gort's core, reached through
# libgort-gdb.so (gdb/capi.cpp) with ctypes; this file only adapts GDB: registers,
# memory of core files, expressions, breakpoints and watchpoints. Output and --json/--log
# formats are the LLDB plugin's.
#
# The library is found at $GORT_GDB_LIB, else next to this file's build tree
# (../build/lib/libgort-gdb.so), else ../lib/ (an installed tree).
#
# Coexists with Go's own runtime-gdb.py (`info goroutines`, `goroutine N bt`): gort only
# adds the `gort` command and sets SIGURG handling.

import ctypes
import json
import os
import re

import gdb

_HERE = os.path.dirname(os.path.abspath(os.path.expanduser(__file__)))
_REGS = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "fs_base")
_READ_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)
_EVAL_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64))
_DEBUG_REGISTERS = 4  # x86-64: DR0-DR3, shared by hardware breakpoints and watchpoints


def _find_lib():
    cands = [os.environ.get("GORT_GDB_LIB", ""),
             os.path.join(_HERE, "..", "build", "lib", "libgort-gdb.so"),
             os.path.join(_HERE, "..", "lib", "libgort-gdb.so")]
    for c in cands:
        if c and os.path.exists(c):
            return os.path.abspath(c)
    return None


class GortError(gdb.GdbError):
    pass


class _Lib:
    def __init__(self):
        path = _find_lib()
        if not path:
            raise GortError("gort: libgort-gdb.so not found; build gort (scripts/build) or set GORT_GDB_LIB=/path/to/libgort-gdb.so")
        self.lib = ctypes.CDLL(path)
        self.lib.gort_call.restype = ctypes.c_void_p
        self.lib.gort_call.argtypes = [ctypes.c_char_p, _READ_FN, _EVAL_FN, ctypes.c_void_p]
        self.lib.gort_free.argtypes = [ctypes.c_void_p]
        self._read = _READ_FN(_read_memory)
        self._eval = _EVAL_FN(_evaluate)

    def call(self, req):
        p = self.lib.gort_call(json.dumps(req).encode(), self._read, self._eval, None)
        try:
            return json.loads(ctypes.string_at(p).decode("utf-8", "replace"))
        finally:
            self.lib.gort_free(p)


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = _Lib()
    return _lib


def _read_memory(ctx, addr, length, buf):
    try:
        data = gdb.selected_inferior().read_memory(addr, length)
        ctypes.memmove(buf, bytes(data), length)
        return 0
    except Exception:
        return 1


def _eval_addr(e, addresses_of=True):
    """An address: a number, a register ($rbx), a variable or expression; with
    ADDRESSES_OF also a variable's or symbol's address (what core's commands accept, as
    LLDB's symbol lookup). None when GDB cannot tell."""
    try:
        return int(e, 0)
    except ValueError:
        pass
    for form in (e, "&" + e, "&'%s'" % e) if addresses_of else (e,):
        try:
            return int(gdb.parse_and_eval(form)) & 0xFFFFFFFFFFFFFFFF
        except Exception:
            continue
    if not addresses_of:
        return None
    try:  # a minimal symbol of a binary without debug info: "Symbol "x" is at 0x... in a file ..."
        m = re.search(r" is at (0x[0-9a-f]+)", gdb.execute("info address %s" % e, to_string=True))
        if m:
            return int(m.group(1), 16)
    except Exception:
        pass
    return None


def _evaluate(ctx, expr, out):
    v = _eval_addr(expr.decode())
    if v is None:
        return 1
    out[0] = v
    return 0


# ---- the target, as core's commands see it ------------------------------------------------

def _exe():
    return gdb.current_progspace().filename or ""


def _elf_entry(path):
    try:
        with open(path, "rb") as f:
            h = f.read(64)
        return int.from_bytes(h[24:32], "little"), int.from_bytes(h[16:18], "little")
    except OSError:
        return None, None


_slides = {}


def _slide(path):
    """Runtime minus link-time address: the relocated entry point GDB shows, minus e_entry
    (cached per executable and process: a breakpoint hit asks every time)."""
    key = (path, gdb.selected_inferior().pid)
    if key in _slides:
        return _slides[key]
    entry, etype = _elf_entry(path)
    slide = 0
    if entry is not None and etype == 3:  # ET_DYN only (PIE)
        try:
            for line in gdb.execute("info files", to_string=True).splitlines():
                if "Entry point:" in line:
                    slide = int(line.split(":")[1].strip(), 16) - entry
                    break
        except gdb.error:
            pass
    if key[1]:  # before the process exists GDB shows the link-time entry: do not keep that
        _slides[key] = slide
    return slide


def _state():
    inf = gdb.selected_inferior()
    if inf.pid == 0:
        return "none", ""
    conn = getattr(inf, "connection", None)
    if conn is not None and conn.type == "core":
        return "core", ""
    th = gdb.selected_thread()
    if th is not None and th.is_running():
        return "running", "running"
    return "stopped", ""


def _regs_of_frame(frame, tid):
    r = {"tid": tid}
    for name in _REGS:
        try:
            r[name] = int(frame.read_register(name)) & 0xFFFFFFFFFFFFFFFF
        except (gdb.error, ValueError):
            r[name] = 0
    return r


def _tid(th):
    pid, lwp, _ = th.ptid
    return lwp or pid


def _threads():
    """Every thread's registers at frame 0, the selected thread's index and the selected frame's registers."""
    inf = gdb.selected_inferior()
    orig = gdb.selected_thread()
    try:
        orig_frame = gdb.selected_frame()
    except gdb.error:
        orig_frame = None
    out, selected, frame = [], -1, None
    try:
        if orig_frame is not None:
            frame = _regs_of_frame(orig_frame, _tid(orig))
        for th in sorted(inf.threads(), key=lambda t: t.num):
            if not th.is_valid() or th.is_running():
                continue
            th.switch()
            out.append(_regs_of_frame(gdb.newest_frame(), _tid(th)))
            if orig is not None and th.ptid == orig.ptid:
                selected = len(out) - 1
    finally:
        if orig is not None and orig.is_valid():
            orig.switch()
            if orig_frame is not None and orig_frame.is_valid():
                orig_frame.select()
    return out, selected, frame


def target_request():
    exe = _exe()
    state, detail = _state()
    req = {"exe": exe, "state": state, "state_detail": detail,
           "pid": gdb.selected_inferior().pid if state in ("stopped", "running") else 0,
           "slide": _slide(exe) if exe and state != "none" else 0}
    if state in ("stopped", "core"):
        req["threads"], req["selected"], req["frame"] = _threads()
    return req


def configure_sigurg():
    gdb.execute("handle SIGURG nostop noprint pass", to_string=True)


def _out(text):
    gdb.write(text)


# ---- commands -------------------------------------------------------------------------------

class _Prefix(gdb.Command):
    def __init__(self, name, doc):
        self.__doc__ = doc
        super().__init__(name, gdb.COMMAND_USER, gdb.COMPLETE_NONE, True)


class _Front(gdb.Command):
    """A command run by core/front/commands.cpp, as in the LLDB plugin."""

    def __init__(self, gdb_name, core_name, doc):
        self.__doc__ = doc
        self.core_name = core_name
        super().__init__(gdb_name, gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        req = target_request()
        req.update(op="run", name=self.core_name, args=gdb.string_to_argv(arg))
        rep = lib().call(req)
        if rep.get("out"):
            _out(rep["out"])
        if not rep.get("ok"):
            raise GortError(rep.get("error") or "gort: failed")


class _Version(gdb.Command):
    """Print the gort GDB extension's version.
Usage: gort version"""

    def __init__(self):
        super().__init__("gort version", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        _out("gort 0.1.0 (GDB extension)\n")


# ---- break maps / break wb / watch map / break clear ---------------------------------------

class _Session:
    """The GDB breakpoints and watchpoints gort made. The --log file, the --map filter and
    the --continue perf probes live in libgort-gdb.so (core/front/hits.h)."""

    def __init__(self):
        self.breaks = []
        self.watches = []

    def hw_in_use(self):
        n = 0
        for b in gdb.breakpoints():
            if b.is_valid() and b.enabled and b.type in (gdb.BP_HARDWARE_BREAKPOINT, gdb.BP_HARDWARE_WATCHPOINT,
                                                         gdb.BP_WATCHPOINT, gdb.BP_READ_WATCHPOINT,
                                                         gdb.BP_ACCESS_WATCHPOINT):
                n += 1
        return n

    def armed(self):
        return any(b.is_valid() for b in self.breaks + self.watches)

    def clear(self):
        nb = nw = 0
        for b in self.breaks:
            if b.is_valid():
                b.delete()
                nb += 1
        for w in self.watches:
            if w.is_valid():
                w.delete()
                nw += 1
        self.breaks, self.watches = [], []
        rep = lib().call({"op": "clear"})
        lost = " (%d samples lost: ring full)" % rep["lost"] if rep.get("lost") else ""
        return "%d perf probe set(s) closed, %d breakpoint(s) and %d watchpoint(s) deleted%s" % (
            rep.get("sets", 0), nb, nw, lost)


_session = _Session()


def _live():
    return _state()[0] in ("stopped", "running")


def _hit_request(extra):
    exe = _exe()
    th = gdb.selected_thread()
    req = {"exe": exe, "pid": gdb.selected_inferior().pid, "slide": _slide(exe),
           "regs": _regs_of_frame(gdb.newest_frame(), _tid(th))}
    req.update(extra)
    return req


class _ProbeBreakpoint(gdb.Breakpoint):
    """A map-write or write-barrier entry: stop() decodes, prints and logs the hit in core;
    GDB stops when gort's mode says so (not with --continue, nor for a map --map skips)."""

    def __init__(self, spec, hw, probe, stop):
        super().__init__(spec, type=gdb.BP_HARDWARE_BREAKPOINT if hw else gdb.BP_BREAKPOINT, internal=False)
        self.probe = probe
        self.gort_stop = stop

    def stop(self):
        try:
            rep = lib().call(_hit_request({"op": "hit", "index": self.probe["index"], "stop": self.gort_stop}))
            if not rep.get("ok"):
                _out("gort: %s\n" % rep.get("error"))
                return self.gort_stop
            return bool(rep.get("kept")) and self.gort_stop
        except Exception as e:  # a breakpoint callback must not take GDB down
            _out("gort: breakpoint callback: internal error: %s\n" % e)
            return self.gort_stop


class _MapWatchpoint(gdb.Breakpoint):
    def __init__(self, flag, map_addr, stop):
        # The location is a C expression: parse it as C whatever the frame's language (Go).
        lang = gdb.parameter("language")
        gdb.execute("set language c", to_string=True)
        try:
            super().__init__("*(unsigned char *) %#x" % flag, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=False)
        finally:
            gdb.execute("set language %s" % (lang or "auto"), to_string=True)
        self.map_addr, self.flag = map_addr, flag
        self.gort_stop = stop

    def stop(self):
        try:
            rep = lib().call(_hit_request({"op": "watch_hit", "map": self.map_addr, "flag": self.flag,
                                           "stop": self.gort_stop}))
            if not rep.get("ok"):
                _out("gort: %s\n" % rep.get("error"))
            return self.gort_stop
        except Exception as e:
            _out("gort: watchpoint callback: internal error: %s\n" % e)
            return self.gort_stop


class _DeferredPerf(gdb.Breakpoint):
    """--continue --hw before the process exists: at runtime.rt0_go, place the perf
    probes (as the LLDB plugin does) and run on."""

    def __init__(self, spec, indices):
        super().__init__(spec, type=gdb.BP_BREAKPOINT, internal=True, temporary=False)
        self.indices = indices
        self.done = False

    def stop(self):
        if not self.done:
            self.done = True
            exe = _exe()
            rep = lib().call({"op": "perf", "exe": exe, "pid": gdb.selected_inferior().pid, "slide": _slide(exe),
                              "indices": [p["index"] for p in self.indices]})
            if not rep.get("ok"):
                _out("gort: could not place hardware breakpoints at launch: %s\n" % rep.get("error"))
            else:
                for p, st in zip(self.indices, rep["status"]):
                    _out("gort: %#x: hardware breakpoint placed\n" % p["entry"] if st["placed"] else
                         "gort: %#x: no hardware breakpoint (%s); not covered\n" % (p["entry"], st["error"]))
        return False


def _parse_addr(s):
    """A map argument (--map, watch map): a number or what GDB evaluates S to, as the
    LLDB plugin's number or register; never a symbol's address."""
    return _eval_addr(s, addresses_of=False)


def _spec_for(probe):
    return _spec(probe["function"], probe["entry"])


def _spec(function, entry_link):
    """A breakpoint location GDB re-resolves when a PIE is relocated: the function's symbol
    at its exact entry (`*'runtime.mapassign_fast64'`, no prologue skip); else the runtime
    address (needs the process, or a fixed-address binary)."""
    exe = _exe()
    state, _ = _state()
    entry, etype = _elf_entry(exe)
    if state in ("stopped", "running") or etype != 3:
        return "*%#x" % (entry_link + (_slide(exe) if state != "none" else 0))
    try:
        addr = int(gdb.parse_and_eval("&'%s'" % function))
        if addr:
            return "*'%s'" % function
    except gdb.error:
        pass
    raise GortError("%s: a stripped PIE has no symbols to place breakpoints before it runs; "
                    "start it first (`starti`), then run this again" % function)


def _place(probes, hw, stop, rt0_go):
    """Stop mode: GDB hardware breakpoints (hbreak) on the debug registers left, software
    breakpoints on the rest. --continue: perf hardware breakpoints in sampling mode (the
    program never stops for them, and the kernel removes them if GDB dies), as the LLDB
    plugin does; GDB software breakpoints that do not stop for the rest. Prints one line
    a probe; returns (hardware, software) counts."""
    nhw = nsw = 0
    sw = list(probes)
    if hw and not stop:
        hwp, sw = probes[:_DEBUG_REGISTERS], probes[_DEBUG_REGISTERS:]
        if _live():
            exe = _exe()
            rep = lib().call({"op": "perf", "exe": exe, "pid": gdb.selected_inferior().pid, "slide": _slide(exe),
                              "indices": [p["index"] for p in hwp]})
            if not rep.get("ok"):
                _out("gort: hardware breakpoints unavailable (%s); using software breakpoints\n" % rep.get("error"))
                sw = hwp + sw
            else:
                for p, st in zip(hwp, rep["status"]):
                    if st["placed"]:
                        nhw += 1
                        _out("gort: hardware  %s %s at %#x\n" % (p["label"], p["function"], p["entry"]))
                    else:
                        _out("gort: %s: no debug register (%s): software breakpoint instead\n" % (p["function"], st["error"]))
                        sw.append(p)
        elif rt0_go is None:
            _out("gort: runtime.rt0_go not found: start the process first (`starti`)\n")
            sw = hwp + sw
        else:
            _session.breaks.append(_DeferredPerf(_spec("runtime.rt0_go", rt0_go), hwp))
            _out("gort: no process yet: hardware breakpoints are placed when it starts (at runtime.rt0_go)\n")
            for p in hwp:
                _out("gort: hardware  %s %s at %#x\n" % (p["label"], p["function"], p["entry"]))
            nhw = len(hwp)
        free = 0
    elif hw and not _live():
        # GDB sets hardware breakpoints only once the native target runs the program
        # ("No hardware breakpoint support in the target").
        _out("gort: no process yet: GDB places hardware breakpoints only in a running program; software "
             "breakpoints instead (`starti` first for hardware ones)\n")
        hw, free = False, 0
    else:
        free = max(0, _DEBUG_REGISTERS - _session.hw_in_use()) if hw else 0
    for p in sw:
        use_hw = free > 0
        if hw and stop and not use_hw:
            _out("gort: %s: no debug register left (%d in use): software breakpoint instead\n"
                 % (p["function"], _DEBUG_REGISTERS))
        bp = _ProbeBreakpoint(_spec_for(p), use_hw, p, stop)
        _session.breaks.append(bp)
        if use_hw:
            free -= 1
            nhw += 1
        else:
            nsw += 1
        _out("gort: %s  %s %s at %#x (breakpoint %d)\n"
             % ("hardware" if use_hw else "software", p["label"], p["function"], p["entry"], bp.number))
    return nhw, nsw


def _hardware_count(n, stop):
    if n == 0:
        return "0 hardware"
    return "%d hardware (%s)" % (n, "GDB hbreak, stops" if stop else "sampling, non-stop")


def _arm(who, exe, log, map_filter, cont):
    rep = lib().call({"op": "arm", "exe": exe, "log": log, "map": map_filter, "continue": cont})
    if not rep.get("ok"):
        raise GortError("%s: %s" % (who, rep.get("error")))


def _parse_break_args(args, who, maps):
    """[--hw|--sw] [--continue] [--log FILE], and for maps [--map ADDR] [--func NAME]...:
    (hw, continue, log, funcs, map)."""
    hw, cont, log, funcs, map_filter = True, False, "", [], None
    needs = {"--log": "a file name"}
    if maps:
        needs.update({"--map": "a map address", "--func": "a function name"})
    i = 0
    while i < len(args):
        a = args[i]
        if a in needs and i + 1 >= len(args):
            raise GortError("%s: %s needs %s" % (who, a, needs[a]))
        if a == "--hw":
            hw = True
        elif a == "--sw":
            hw = False
        elif a in ("--continue", "-c"):
            cont = True
        elif a == "--log":
            i += 1
            log = args[i]
        elif a == "--map" and maps:
            i += 1
            map_filter = _parse_addr(args[i])
            if map_filter is None:
                raise GortError("%s: bad map address '%s'" % (who, args[i]))
        elif a == "--func" and maps:
            i += 1
            funcs.append(args[i])
        else:
            raise GortError("%s: unknown argument '%s'; see `help %s`" % (who, a, who))
        i += 1
    return hw, cont, log, funcs, map_filter


def _break_command(who, which, arg):
    """What `gort break maps` and `gort break wb` share: parse ARG, choose the probes
    (core's order), set --log/--map/--continue, place them. Returns (hardware, software,
    continue, log, map)."""
    hw, cont, log, funcs, map_filter = _parse_break_args(gdb.string_to_argv(arg), who, which == "maps")
    exe = _exe()
    if not exe:
        raise GortError("%s: no target; load one first (`file ./prog`)" % who)
    rep = lib().call({"op": "probes", "exe": exe, "which": which, "funcs": funcs})
    if not rep.get("ok"):
        raise GortError("%s: %s" % (who, rep.get("error")))
    _arm(who, exe, log, map_filter, cont)
    configure_sigurg()
    nhw, nsw = _place(rep["probes"], hw, not cont, rep.get("rt0_go"))
    return nhw, nsw, cont, log, map_filter


class _BreakMaps(gdb.Command):
    """Break on every map write (the entries of the map-write runtime functions).
Each hit prints goroutine, thread, operation (assign, delete, clear), map, key and the
calling Go function with file:line (innermost inlined first).
--hw (default): hardware breakpoints on up to 4 entries (the debug registers left),
software breakpoints on the rest; it says which got what. In stop mode they are GDB's
hbreak (the program must be running: `starti` first); with --continue, perf breakpoints
sampled without stopping (as in the LLDB plugin). --sw: software only.
--continue: log and keep running; with --log the hits go only to the file.
--log FILE: one JSON object a line. --map ADDR: only that map's writes (ADDR may be $rbx).
--func NAME (repeatable): only those functions. Remove with `gort break clear`.
Usage: gort break maps [--hw|--sw] [--map ADDR] [--continue] [--log FILE] [--func NAME]..."""

    def __init__(self):
        super().__init__("gort break maps", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        nhw, nsw, cont, log, map_filter = _break_command("gort break maps", "maps", arg)
        _out("gort: %d map-write function(s): %s, %d software; %s%s%s\n" % (
            nhw + nsw, _hardware_count(nhw, not cont), nsw,
            "hits are logged, the program keeps running" if cont else "each hit stops",
            "; only map %#x" % map_filter if map_filter is not None else "",
            "; log %s" % log if log else ""))


class _BreakWb(gdb.Command):
    """Break on the GC write barriers (runtime.gcWriteBarrier1..8, Go 1.21+).
Each hit prints goroutine, thread, the barrier, the calling Go function with file:line,
and the pointer stores the call guards (slot address and new value). Write barriers run
only while the GC is marking, so hits come in bursts during GC cycles.
--hw (default): hardware breakpoints on the debug registers left (gcWriteBarrier2, 1,
4, 3 first; hbreak in stop mode, perf with --continue), software breakpoints on the rest. --sw: software only. --continue: log and
keep running. --log FILE: one JSON object a line. Remove with `gort break clear`.
Usage: gort break wb [--hw|--sw] [--continue] [--log FILE]"""

    def __init__(self):
        super().__init__("gort break wb", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        nhw, nsw, cont, log, _ = _break_command("gort break wb", "wb", arg)
        n = nhw + nsw
        _out("gort: %d write-barrier entr%s: %s, %d software; %s%s\n" % (
            n, "y" if n == 1 else "ies", _hardware_count(nhw, not cont), nsw,
            "hits are logged, the program keeps running" if cont else "each hit stops",
            "; log %s" % log if log else ""))
        _out("gort: write barriers run only while the GC is marking: hits come in bursts during GC cycles\n")


class _BreakClear(gdb.Command):
    """Remove every breakpoint, watchpoint and perf probe gort made.
The program then runs normally.
Usage: gort break clear"""

    def __init__(self):
        super().__init__("gort break clear", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        _out("gort: %s\n" % _session.clear())


class _WatchMap(gdb.Command):
    """Watch every write to one map (a hardware watchpoint on its writing flag).
Every write to that map, by any runtime path, stops (GDB's watchpoint; or is logged
without stopping with --continue: a perf watchpoint) with its goroutine, the runtime
function and the Go caller. ADDR may be a register ($rbx at a map-write stop).
Needs a running process. Remove with `gort break clear`.
Usage: gort watch map ADDR [--continue] [--log FILE]"""

    def __init__(self):
        super().__init__("gort watch map", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        usage = "usage: gort watch map ADDR [--continue] [--log FILE]"
        args = gdb.string_to_argv(arg)
        m, cont, log = None, False, ""
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("--continue", "-c"):
                cont = True
            elif a == "--log" and i + 1 < len(args):
                i += 1
                log = args[i]
            elif m is None and _parse_addr(a) is not None:
                m = _parse_addr(a)
            else:
                raise GortError("gort watch map: unexpected argument '%s'; %s" % (a, usage))
            i += 1
        if m is None:
            raise GortError("gort watch map: which map? " + usage)
        exe = _exe()
        if not exe:
            raise GortError("gort watch map: no target")
        if _state()[0] not in ("stopped", "running"):
            raise GortError("gort watch map: no process; run the program to where the map exists first")
        rep = lib().call({"op": "probes", "exe": exe, "which": "maps"})
        if not rep.get("ok"):
            raise GortError("gort watch map: %s" % rep.get("error"))
        if rep.get("flag_offset") is None:
            raise GortError("gort watch map: the writing flag's offset is unknown for this Go version")
        flag = m + rep["flag_offset"]
        _arm("gort watch map", exe, log, None, cont)
        configure_sigurg()
        if cont:  # a perf watchpoint in sampling mode, as the LLDB plugin: the program never stops
            r = lib().call({"op": "perf_watch", "exe": exe, "pid": gdb.selected_inferior().pid, "slide": _slide(exe),
                            "map": m, "flag": flag})
            if not r.get("ok"):
                raise GortError("gort watch map: %s" % r.get("error"))
        else:
            if _session.hw_in_use() >= _DEBUG_REGISTERS:
                raise GortError("gort watch map: no debug register left (%d in use by hardware breakpoints and "
                                "watchpoints); `gort break clear` or delete one first" % _DEBUG_REGISTERS)
            try:
                _session.watches.append(_MapWatchpoint(flag, m, True))
            except gdb.error as e:
                raise GortError("gort watch map: GDB could not watch %#x: %s" % (flag, e))
        _out("gort: watching map %#x: 1-byte write watchpoint on its writing flag at %#x; %s\n" % (
            m, flag, "hits are logged, the program keeps running" if cont else "each write stops"))


# ---- record start / stop --------------------------------------------------------------------

class _RecordStart(gdb.Command):
    """Start recording every map write of the live process, without stopping it.
Hardware breakpoints and uprobes through perf_event_open, into TRACE (default gort.trace): time,
thread, CPU, goroutine, map and user stack of each write. The program runs on
(`continue`); nothing fires while GDB holds it stopped. Detach and quit end the recording.
--backend inproc is not available under GDB (docs/gdb.md).
Usage: gort record start [-o TRACE] [--stack-depth N] [--maps ADDR,...] [--hw FUNC,...] [--sync [--reads]] [--backend perf]"""

    def __init__(self):
        super().__init__("gort record start", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        exe = _exe()
        live = _live() and exe
        # Core checks the arguments first, then the process (pid 0: none, or a core file).
        rep = lib().call({"op": "record_start", "exe": exe, "pid": gdb.selected_inferior().pid if live else 0,
                          "slide": _slide(exe) if live else 0, "args": gdb.string_to_argv(arg)})
        if rep.get("out"):
            _out(rep["out"])
        if not rep.get("ok"):
            raise GortError(rep.get("error"))
        configure_sigurg()


class _RecordStop(gdb.Command):
    """Stop recording and write the trace's summary.
Usage: gort record stop"""

    def __init__(self):
        super().__init__("gort record stop", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        rep = lib().call({"op": "record_stop", "reason": "stopped"})
        if not rep.get("ok"):
            raise GortError(rep.get("error"))
        _out(rep["out"])


def _leaving(reason):
    """When GDB lets the program go (detach, exit of GDB) or it exited: end a recording so
    the trace gets its summary, close gort's perf probes and the --log file. GDB itself
    takes its breakpoints and watchpoints out of a program it detaches from."""
    prefix = {"gdb exited": "at exit", "detached": "before detaching"}.get(reason)
    try:
        what = []
        rep = lib().call({"op": "record_stop", "reason": reason})
        if rep.get("ok") and rep.get("out"):
            what.append(rep["out"].rstrip("\n"))
        if reason == "detached" and _session.armed():
            what.append("gort: " + _session.clear())
        else:
            lib().call({"op": "clear"})
        for w in what:
            _out((w.replace("gort: ", "gort: %s: " % prefix, 1) if prefix else w) + "\n")
    except Exception:
        pass


# ---- registration ---------------------------------------------------------------------------

_FRONT = [
    ("gort info", "info", """Show the target's Go version, map implementation, layout source and probe plan size.
Usage: gort info"""),
    ("gort goroutines", "goroutines", """List the goroutines of the stopped Go program.
Id, status, wait reason, thread if running, and the innermost user-code frame. '*' marks the selected thread's goroutine.
Runtime goroutines and dead ones are hidden unless --all.
Usage: gort goroutines [--all] [--json]"""),
    ("gort bt", "bt", """Backtrace of one goroutine (default: the selected thread's).
By frame pointers, with inlined frames, from the thread's registers if it runs, else
from its saved g.sched.
Usage: gort bt [GOID] [--json]"""),
    ("gort map", "map", """Decode a Go map's header and entries (hmap or swiss).
With no ADDR at the entry of runtime.mapassign*/mapdelete*/mapclear, decodes the map
being written (RBX) using its type (RAX).
Usage: gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] [--limit N] [--json]
  ADDR: hex, a register ($rbx) or an expression."""),
    ("gort ptr", "ptr", """What each address is: heap object, global, goroutine stack, code.
A heap object gets its base, size, allocated or free, marked; also freed heap pages,
or unknown. ADDR: hex, decimal, a register ($rbx),
a symbol or an expression. --json: one object per ADDR.
Usage: gort ptr ADDR... [--json]"""),
    ("gort heap ptr", "heap ptr", """Same as `gort ptr`.
Usage: gort heap ptr ADDR... [--json]"""),
    ("gort heap scan", "heap scan", """Find integer-held addresses of freed heap objects (dangling uintptrs).
Words the GC keeps whose value points into a heap object the GC did not keep. The process must be stopped, or be a core.
--stacks: scan goroutine stacks too. --json: the schema of docs/heap.md.
Usage: gort heap scan [--stacks] [--json]"""),
    ("gort crash", "crash", """Name the goroutines writing one map at a crash ("concurrent map writes").
On a core file: the goroutine that threw and every other goroutine inside a write to
the same map, with their stacks; the verdict of `gort postmortem BIN CORE`. --bt adds `gort bt` of
each writer.
Usage: gort crash [--json] [--bt]"""),
]


def _register():
    _Prefix("gort", """Debug Go programs at the level of the Go runtime.
Goroutines, maps, map-write and write-barrier breakpoints, heap pointer checks,
recording: the same commands as gort's LLDB plugin (docs/gdb.md).""")
    _Prefix("gort heap", "The Go heap of the stopped process or core (gort heap scan, gort heap ptr).")
    _Prefix("gort break", "Breakpoints on every map write or GC write barrier (gort break maps, gort break wb, gort break clear).")
    _Prefix("gort watch", "Hardware watchpoints on Go runtime state (gort watch map).")
    _Prefix("gort record", "Record every map write without stopping the program (gort record start/stop).")
    for gname, cname, doc in _FRONT:
        _Front(gname, cname, doc)
    _Version()
    _BreakMaps()
    _BreakWb()
    _BreakClear()
    _WatchMap()
    _RecordStart()
    _RecordStop()
    # GDB 13 has no "before detach" event; `exited` also fires on detach, without an exit code.
    gdb.events.exited.connect(lambda ev: _leaving("target exited" if hasattr(ev, "exit_code") else "detached"))
    if hasattr(gdb.events, "gdb_exiting"):
        gdb.events.gdb_exiting.connect(lambda ev: _leaving("gdb exited"))


def _greeting():
    configured = False
    exe = _exe()
    if not exe:
        configure_sigurg()
        return ("gort: loaded. SIGURG (Go preemption) is passed silently. "
                "Load a program and run `gort info`; `help gort` lists the commands.")
    rep = lib().call({"op": "describe", "exe": exe})
    if not rep.get("ok"):
        return "gort: loaded; %s. Nothing was changed." % rep.get("error")
    try:
        configure_sigurg()
        configured = True
    except gdb.error:
        pass
    return "gort: %s%s" % (rep["text"], "; SIGURG (Go preemption) passed silently" if configured
                           else "; could not set SIGURG handling")


if not getattr(gdb, "_gort_loaded", False):
    gdb._gort_loaded = True
    _register()
    _out(_greeting() + "\n")
else:
    _out("gort: already loaded\n")
