// A small persistent pool of std::threads that every kernel shares.
//
// Determinism: a kernel hands parallelFor a range of independent items (rows, columns, heads)
// and each output element is computed by exactly one item, in a fixed order inside it. Which
// thread runs an item, and how the range is cut into chunks, never changes an arithmetic
// result — so 1 thread and N threads give bit-identical outputs (needed for bit-exact resume).
// There are no cross-thread reductions; where a kernel needs a total it writes per-item
// partials and sums them afterwards on the calling thread in item order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qalc {

class ThreadPool {
 public:
  static ThreadPool& global();

  ~ThreadPool();

  /** Threads used by parallelFor, the calling thread included; n ≥ 1. */
  void setThreads(int n);
  int threads() const { return threads_; }

  /**
   * Calls body(task) once for every task in [0, tasks), spread over the threads; returns when all
   * are done. One run at a time (callers from several JavaScript threads wait their turn), so a
   * body must not call run() or parallelFor itself.
   */
  void run(int tasks, const std::function<void(int)>& body);

 private:
  ThreadPool() = default;
  void stopWorkers();
  void workerLoop(int worker);
  void runTasks();

  // One kernel at a time: JavaScript worker threads of one process share this pool.
  std::mutex callerMutex_;
  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // Guarded by mutex_:
  uint64_t generation_ = 0;
  bool stopping_ = false;
  int busyWorkers_ = 0;
  const std::function<void(int)>* body_ = nullptr;
  int tasks_ = 0;
  int nextTask_ = 0;
};

/**
 * Runs body(begin, end) over [0, count) in chunks of at least `grain` items; inline on the
 * calling thread when one chunk would do (small work is not worth waking a thread for).
 */
void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

/** The grain that gives each chunk at least minChunkWork() multiply-adds when one item costs workPerItem. */
int64_t grainFor(int64_t workPerItem);

/**
 * Work below which a chunk is not worth a thread (default 32768 multiply-adds, ~20 µs). Tests
 * set it to 1 so that even small shapes are cut into as many chunks as there are threads.
 */
void setMinChunkWork(int64_t work);
int64_t minChunkWork();

}  // namespace qalc
