// g.waitreason -> the string the runtime prints, per Go version: the one place that
// knows the waitReason enum. Generated from runtime2.go (`const ( waitReasonZero waitReason =
// iota ...)` for the numbering, `waitReasonStrings` for the text) of each Go 1.21-1.26
// source tree (go1.21.13 ... go1.26.10, Debian golang-1.NN-src); regenerate the same way
// for a new version. Go 1.22 appends 5 reasons, 1.23 one, 1.24 inserts
// sync.WaitGroup.Wait (renumbering everything after it), 1.25 inserts
// "GOMAXPROCS updater (idle)", and 1.26 reorders the enum (all "not leaked" reasons first).

#include "core/goruntime/goroutines.h"

#include <array>
#include <span>

namespace gort::core {
namespace {

// runtime2.go @go1.21: 32 reasons
constexpr const char* kWaitReasons1_21[] = {
    "",  // 0 waitReasonZero
    "GC assist marking",  // 1 waitReasonGCAssistMarking
    "IO wait",  // 2 waitReasonIOWait
    "chan receive (nil chan)",  // 3 waitReasonChanReceiveNilChan
    "chan send (nil chan)",  // 4 waitReasonChanSendNilChan
    "dumping heap",  // 5 waitReasonDumpingHeap
    "garbage collection",  // 6 waitReasonGarbageCollection
    "garbage collection scan",  // 7 waitReasonGarbageCollectionScan
    "panicwait",  // 8 waitReasonPanicWait
    "select",  // 9 waitReasonSelect
    "select (no cases)",  // 10 waitReasonSelectNoCases
    "GC assist wait",  // 11 waitReasonGCAssistWait
    "GC sweep wait",  // 12 waitReasonGCSweepWait
    "GC scavenge wait",  // 13 waitReasonGCScavengeWait
    "chan receive",  // 14 waitReasonChanReceive
    "chan send",  // 15 waitReasonChanSend
    "finalizer wait",  // 16 waitReasonFinalizerWait
    "force gc (idle)",  // 17 waitReasonForceGCIdle
    "semacquire",  // 18 waitReasonSemacquire
    "sleep",  // 19 waitReasonSleep
    "sync.Cond.Wait",  // 20 waitReasonSyncCondWait
    "sync.Mutex.Lock",  // 21 waitReasonSyncMutexLock
    "sync.RWMutex.RLock",  // 22 waitReasonSyncRWMutexRLock
    "sync.RWMutex.Lock",  // 23 waitReasonSyncRWMutexLock
    "trace reader (blocked)",  // 24 waitReasonTraceReaderBlocked
    "wait for GC cycle",  // 25 waitReasonWaitForGCCycle
    "GC worker (idle)",  // 26 waitReasonGCWorkerIdle
    "GC worker (active)",  // 27 waitReasonGCWorkerActive
    "preempted",  // 28 waitReasonPreempted
    "debug call",  // 29 waitReasonDebugCall
    "GC mark termination",  // 30 waitReasonGCMarkTermination
    "stopping the world",  // 31 waitReasonStoppingTheWorld
};
// runtime2.go @go1.22: 37 reasons
constexpr const char* kWaitReasons1_22[] = {
    "",  // 0 waitReasonZero
    "GC assist marking",  // 1 waitReasonGCAssistMarking
    "IO wait",  // 2 waitReasonIOWait
    "chan receive (nil chan)",  // 3 waitReasonChanReceiveNilChan
    "chan send (nil chan)",  // 4 waitReasonChanSendNilChan
    "dumping heap",  // 5 waitReasonDumpingHeap
    "garbage collection",  // 6 waitReasonGarbageCollection
    "garbage collection scan",  // 7 waitReasonGarbageCollectionScan
    "panicwait",  // 8 waitReasonPanicWait
    "select",  // 9 waitReasonSelect
    "select (no cases)",  // 10 waitReasonSelectNoCases
    "GC assist wait",  // 11 waitReasonGCAssistWait
    "GC sweep wait",  // 12 waitReasonGCSweepWait
    "GC scavenge wait",  // 13 waitReasonGCScavengeWait
    "chan receive",  // 14 waitReasonChanReceive
    "chan send",  // 15 waitReasonChanSend
    "finalizer wait",  // 16 waitReasonFinalizerWait
    "force gc (idle)",  // 17 waitReasonForceGCIdle
    "semacquire",  // 18 waitReasonSemacquire
    "sleep",  // 19 waitReasonSleep
    "sync.Cond.Wait",  // 20 waitReasonSyncCondWait
    "sync.Mutex.Lock",  // 21 waitReasonSyncMutexLock
    "sync.RWMutex.RLock",  // 22 waitReasonSyncRWMutexRLock
    "sync.RWMutex.Lock",  // 23 waitReasonSyncRWMutexLock
    "trace reader (blocked)",  // 24 waitReasonTraceReaderBlocked
    "wait for GC cycle",  // 25 waitReasonWaitForGCCycle
    "GC worker (idle)",  // 26 waitReasonGCWorkerIdle
    "GC worker (active)",  // 27 waitReasonGCWorkerActive
    "preempted",  // 28 waitReasonPreempted
    "debug call",  // 29 waitReasonDebugCall
    "GC mark termination",  // 30 waitReasonGCMarkTermination
    "stopping the world",  // 31 waitReasonStoppingTheWorld
    "flushing proc caches",  // 32 waitReasonFlushProcCaches
    "trace goroutine status",  // 33 waitReasonTraceGoroutineStatus
    "trace proc status",  // 34 waitReasonTraceProcStatus
    "page trace flush",  // 35 waitReasonPageTraceFlush
    "coroutine",  // 36 waitReasonCoroutine
};
// runtime2.go @go1.23: 38 reasons
constexpr const char* kWaitReasons1_23[] = {
    "",  // 0 waitReasonZero
    "GC assist marking",  // 1 waitReasonGCAssistMarking
    "IO wait",  // 2 waitReasonIOWait
    "chan receive (nil chan)",  // 3 waitReasonChanReceiveNilChan
    "chan send (nil chan)",  // 4 waitReasonChanSendNilChan
    "dumping heap",  // 5 waitReasonDumpingHeap
    "garbage collection",  // 6 waitReasonGarbageCollection
    "garbage collection scan",  // 7 waitReasonGarbageCollectionScan
    "panicwait",  // 8 waitReasonPanicWait
    "select",  // 9 waitReasonSelect
    "select (no cases)",  // 10 waitReasonSelectNoCases
    "GC assist wait",  // 11 waitReasonGCAssistWait
    "GC sweep wait",  // 12 waitReasonGCSweepWait
    "GC scavenge wait",  // 13 waitReasonGCScavengeWait
    "chan receive",  // 14 waitReasonChanReceive
    "chan send",  // 15 waitReasonChanSend
    "finalizer wait",  // 16 waitReasonFinalizerWait
    "force gc (idle)",  // 17 waitReasonForceGCIdle
    "semacquire",  // 18 waitReasonSemacquire
    "sleep",  // 19 waitReasonSleep
    "sync.Cond.Wait",  // 20 waitReasonSyncCondWait
    "sync.Mutex.Lock",  // 21 waitReasonSyncMutexLock
    "sync.RWMutex.RLock",  // 22 waitReasonSyncRWMutexRLock
    "sync.RWMutex.Lock",  // 23 waitReasonSyncRWMutexLock
    "trace reader (blocked)",  // 24 waitReasonTraceReaderBlocked
    "wait for GC cycle",  // 25 waitReasonWaitForGCCycle
    "GC worker (idle)",  // 26 waitReasonGCWorkerIdle
    "GC worker (active)",  // 27 waitReasonGCWorkerActive
    "preempted",  // 28 waitReasonPreempted
    "debug call",  // 29 waitReasonDebugCall
    "GC mark termination",  // 30 waitReasonGCMarkTermination
    "stopping the world",  // 31 waitReasonStoppingTheWorld
    "flushing proc caches",  // 32 waitReasonFlushProcCaches
    "trace goroutine status",  // 33 waitReasonTraceGoroutineStatus
    "trace proc status",  // 34 waitReasonTraceProcStatus
    "page trace flush",  // 35 waitReasonPageTraceFlush
    "coroutine",  // 36 waitReasonCoroutine
    "GC weak to strong wait",  // 37 waitReasonGCWeakToStrongWait
};
// runtime2.go @go1.24: 44 reasons
constexpr const char* kWaitReasons1_24[] = {
    "",  // 0 waitReasonZero
    "GC assist marking",  // 1 waitReasonGCAssistMarking
    "IO wait",  // 2 waitReasonIOWait
    "chan receive (nil chan)",  // 3 waitReasonChanReceiveNilChan
    "chan send (nil chan)",  // 4 waitReasonChanSendNilChan
    "dumping heap",  // 5 waitReasonDumpingHeap
    "garbage collection",  // 6 waitReasonGarbageCollection
    "garbage collection scan",  // 7 waitReasonGarbageCollectionScan
    "panicwait",  // 8 waitReasonPanicWait
    "select",  // 9 waitReasonSelect
    "select (no cases)",  // 10 waitReasonSelectNoCases
    "GC assist wait",  // 11 waitReasonGCAssistWait
    "GC sweep wait",  // 12 waitReasonGCSweepWait
    "GC scavenge wait",  // 13 waitReasonGCScavengeWait
    "chan receive",  // 14 waitReasonChanReceive
    "chan send",  // 15 waitReasonChanSend
    "finalizer wait",  // 16 waitReasonFinalizerWait
    "force gc (idle)",  // 17 waitReasonForceGCIdle
    "semacquire",  // 18 waitReasonSemacquire
    "sleep",  // 19 waitReasonSleep
    "sync.Cond.Wait",  // 20 waitReasonSyncCondWait
    "sync.Mutex.Lock",  // 21 waitReasonSyncMutexLock
    "sync.RWMutex.RLock",  // 22 waitReasonSyncRWMutexRLock
    "sync.RWMutex.Lock",  // 23 waitReasonSyncRWMutexLock
    "sync.WaitGroup.Wait",  // 24 waitReasonSyncWaitGroupWait
    "trace reader (blocked)",  // 25 waitReasonTraceReaderBlocked
    "wait for GC cycle",  // 26 waitReasonWaitForGCCycle
    "GC worker (idle)",  // 27 waitReasonGCWorkerIdle
    "GC worker (active)",  // 28 waitReasonGCWorkerActive
    "preempted",  // 29 waitReasonPreempted
    "debug call",  // 30 waitReasonDebugCall
    "GC mark termination",  // 31 waitReasonGCMarkTermination
    "stopping the world",  // 32 waitReasonStoppingTheWorld
    "flushing proc caches",  // 33 waitReasonFlushProcCaches
    "trace goroutine status",  // 34 waitReasonTraceGoroutineStatus
    "trace proc status",  // 35 waitReasonTraceProcStatus
    "page trace flush",  // 36 waitReasonPageTraceFlush
    "coroutine",  // 37 waitReasonCoroutine
    "GC weak to strong wait",  // 38 waitReasonGCWeakToStrongWait
    "synctest.Run",  // 39 waitReasonSynctestRun
    "synctest.Wait",  // 40 waitReasonSynctestWait
    "chan receive (synctest)",  // 41 waitReasonSynctestChanReceive
    "chan send (synctest)",  // 42 waitReasonSynctestChanSend
    "select (synctest)",  // 43 waitReasonSynctestSelect
};
// runtime2.go @go1.25: 47 reasons
constexpr const char* kWaitReasons1_25[] = {
    "",  // 0 waitReasonZero
    "GC assist marking",  // 1 waitReasonGCAssistMarking
    "IO wait",  // 2 waitReasonIOWait
    "chan receive (nil chan)",  // 3 waitReasonChanReceiveNilChan
    "chan send (nil chan)",  // 4 waitReasonChanSendNilChan
    "dumping heap",  // 5 waitReasonDumpingHeap
    "garbage collection",  // 6 waitReasonGarbageCollection
    "garbage collection scan",  // 7 waitReasonGarbageCollectionScan
    "panicwait",  // 8 waitReasonPanicWait
    "select",  // 9 waitReasonSelect
    "select (no cases)",  // 10 waitReasonSelectNoCases
    "GC assist wait",  // 11 waitReasonGCAssistWait
    "GC sweep wait",  // 12 waitReasonGCSweepWait
    "GC scavenge wait",  // 13 waitReasonGCScavengeWait
    "chan receive",  // 14 waitReasonChanReceive
    "chan send",  // 15 waitReasonChanSend
    "finalizer wait",  // 16 waitReasonFinalizerWait
    "force gc (idle)",  // 17 waitReasonForceGCIdle
    "GOMAXPROCS updater (idle)",  // 18 waitReasonUpdateGOMAXPROCSIdle
    "semacquire",  // 19 waitReasonSemacquire
    "sleep",  // 20 waitReasonSleep
    "sync.Cond.Wait",  // 21 waitReasonSyncCondWait
    "sync.Mutex.Lock",  // 22 waitReasonSyncMutexLock
    "sync.RWMutex.RLock",  // 23 waitReasonSyncRWMutexRLock
    "sync.RWMutex.Lock",  // 24 waitReasonSyncRWMutexLock
    "sync.WaitGroup.Wait",  // 25 waitReasonSyncWaitGroupWait
    "trace reader (blocked)",  // 26 waitReasonTraceReaderBlocked
    "wait for GC cycle",  // 27 waitReasonWaitForGCCycle
    "GC worker (idle)",  // 28 waitReasonGCWorkerIdle
    "GC worker (active)",  // 29 waitReasonGCWorkerActive
    "preempted",  // 30 waitReasonPreempted
    "debug call",  // 31 waitReasonDebugCall
    "GC mark termination",  // 32 waitReasonGCMarkTermination
    "stopping the world",  // 33 waitReasonStoppingTheWorld
    "flushing proc caches",  // 34 waitReasonFlushProcCaches
    "trace goroutine status",  // 35 waitReasonTraceGoroutineStatus
    "trace proc status",  // 36 waitReasonTraceProcStatus
    "page trace flush",  // 37 waitReasonPageTraceFlush
    "coroutine",  // 38 waitReasonCoroutine
    "GC weak to strong wait",  // 39 waitReasonGCWeakToStrongWait
    "synctest.Run",  // 40 waitReasonSynctestRun
    "synctest.Wait",  // 41 waitReasonSynctestWait
    "chan receive (durable)",  // 42 waitReasonSynctestChanReceive
    "chan send (durable)",  // 43 waitReasonSynctestChanSend
    "select (durable)",  // 44 waitReasonSynctestSelect
    "sync.WaitGroup.Wait (durable)",  // 45 waitReasonSynctestWaitGroupWait
    "cleanup wait",  // 46 waitReasonCleanupWait
};
// runtime2.go @go1.26: 47 reasons
constexpr const char* kWaitReasons1_26[] = {
    "",  // 0 waitReasonZero
    "GC assist marking",  // 1 waitReasonGCAssistMarking
    "IO wait",  // 2 waitReasonIOWait
    "dumping heap",  // 3 waitReasonDumpingHeap
    "garbage collection",  // 4 waitReasonGarbageCollection
    "garbage collection scan",  // 5 waitReasonGarbageCollectionScan
    "panicwait",  // 6 waitReasonPanicWait
    "GC assist wait",  // 7 waitReasonGCAssistWait
    "GC sweep wait",  // 8 waitReasonGCSweepWait
    "GC scavenge wait",  // 9 waitReasonGCScavengeWait
    "finalizer wait",  // 10 waitReasonFinalizerWait
    "force gc (idle)",  // 11 waitReasonForceGCIdle
    "GOMAXPROCS updater (idle)",  // 12 waitReasonUpdateGOMAXPROCSIdle
    "semacquire",  // 13 waitReasonSemacquire
    "sleep",  // 14 waitReasonSleep
    "chan receive (nil chan)",  // 15 waitReasonChanReceiveNilChan
    "chan send (nil chan)",  // 16 waitReasonChanSendNilChan
    "select (no cases)",  // 17 waitReasonSelectNoCases
    "select",  // 18 waitReasonSelect
    "chan receive",  // 19 waitReasonChanReceive
    "chan send",  // 20 waitReasonChanSend
    "sync.Cond.Wait",  // 21 waitReasonSyncCondWait
    "sync.Mutex.Lock",  // 22 waitReasonSyncMutexLock
    "sync.RWMutex.RLock",  // 23 waitReasonSyncRWMutexRLock
    "sync.RWMutex.Lock",  // 24 waitReasonSyncRWMutexLock
    "sync.WaitGroup.Wait",  // 25 waitReasonSyncWaitGroupWait
    "trace reader (blocked)",  // 26 waitReasonTraceReaderBlocked
    "wait for GC cycle",  // 27 waitReasonWaitForGCCycle
    "GC worker (idle)",  // 28 waitReasonGCWorkerIdle
    "GC worker (active)",  // 29 waitReasonGCWorkerActive
    "preempted",  // 30 waitReasonPreempted
    "debug call",  // 31 waitReasonDebugCall
    "GC mark termination",  // 32 waitReasonGCMarkTermination
    "stopping the world",  // 33 waitReasonStoppingTheWorld
    "flushing proc caches",  // 34 waitReasonFlushProcCaches
    "trace goroutine status",  // 35 waitReasonTraceGoroutineStatus
    "trace proc status",  // 36 waitReasonTraceProcStatus
    "page trace flush",  // 37 waitReasonPageTraceFlush
    "coroutine",  // 38 waitReasonCoroutine
    "GC weak to strong wait",  // 39 waitReasonGCWeakToStrongWait
    "synctest.Run",  // 40 waitReasonSynctestRun
    "synctest.Wait",  // 41 waitReasonSynctestWait
    "chan receive (durable)",  // 42 waitReasonSynctestChanReceive
    "chan send (durable)",  // 43 waitReasonSynctestChanSend
    "select (durable)",  // 44 waitReasonSynctestSelect
    "sync.WaitGroup.Wait (durable)",  // 45 waitReasonSynctestWaitGroupWait
    "cleanup wait",  // 46 waitReasonCleanupWait
};

std::span<const char* const> table_for(const GoVersion& v) {
  if (v.major != 1) return {};
  switch (v.minor) {
    case 21: return kWaitReasons1_21;
    case 22: return kWaitReasons1_22;
    case 23: return kWaitReasons1_23;
    case 24: return kWaitReasons1_24;
    case 25: return kWaitReasons1_25;
    case 26: return kWaitReasons1_26;
    default: return {};
  }
}

}  // namespace

std::optional<std::string_view> wait_reason_name(const GoVersion& v, uint8_t reason) {
  auto t = table_for(v);
  if (reason >= t.size()) return std::nullopt;
  return std::string_view(t[reason]);
}

}  // namespace gort::core
