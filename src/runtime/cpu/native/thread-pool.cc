// The pool hands out tasks from a shared counter under one mutex: the tasks are coarse (a
// chunk of rows or heads), so the lock is taken a handful of times per kernel. Workers sleep
// on a condition variable between kernels; this machine's cores are shared with other work,
// so they never spin.
#include "thread-pool.h"

#include <algorithm>
#include <atomic>

namespace qalc {

ThreadPool& ThreadPool::global() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::~ThreadPool() {
  std::lock_guard<std::mutex> caller(callerMutex_);
  stopWorkers();
}

void ThreadPool::stopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  stopping_ = false;
}

void ThreadPool::setThreads(int n) {
  std::lock_guard<std::mutex> caller(callerMutex_);
  n = std::max(1, n);
  if (n == threads_) return;
  stopWorkers();
  threads_ = n;
  for (int w = 1; w < n; w++) workers_.emplace_back([this, w] { workerLoop(w); });
}

// Takes tasks until none is left. Called with mutex_ held; releases it around each body call.
void ThreadPool::runTasks() {
  while (nextTask_ < tasks_) {
    int task = nextTask_++;
    const std::function<void(int)>* body = body_;
    mutex_.unlock();
    (*body)(task);
    mutex_.lock();
  }
}

void ThreadPool::workerLoop(int) {
  std::unique_lock<std::mutex> lock(mutex_);
  uint64_t seen = generation_;
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    busyWorkers_++;
    runTasks();
    if (--busyWorkers_ == 0) done_.notify_one();
  }
}

void ThreadPool::run(int tasks, const std::function<void(int)>& body) {
  if (tasks <= 0) return;
  std::lock_guard<std::mutex> caller(callerMutex_);
  if (threads_ == 1 || tasks == 1) {
    for (int t = 0; t < tasks; t++) body(t);
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  body_ = &body;
  tasks_ = tasks;
  nextTask_ = 0;
  generation_++;
  wake_.notify_all();
  runTasks();
  // Every task has been taken; wait for the workers still running theirs.
  done_.wait(lock, [&] { return busyWorkers_ == 0; });
  body_ = nullptr;
}

namespace {
// ~20 µs of work per chunk: waking a sleeping thread costs a few µs.
std::atomic<int64_t> minWorkPerChunk{32 * 1024};
}  // namespace

void setMinChunkWork(int64_t work) { minWorkPerChunk = std::max<int64_t>(1, work); }
int64_t minChunkWork() { return minWorkPerChunk; }

int64_t grainFor(int64_t workPerItem) {
  return std::max<int64_t>(1, minWorkPerChunk / std::max<int64_t>(1, workPerItem));
}

void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (count <= 0) return;
  ThreadPool& pool = ThreadPool::global();
  grain = std::max<int64_t>(1, grain);
  int64_t chunks = std::min<int64_t>(pool.threads(), (count + grain - 1) / grain);
  if (chunks <= 1) {
    body(0, count);
    return;
  }
  int64_t per = (count + chunks - 1) / chunks;
  pool.run(static_cast<int>(chunks), [&](int chunk) {
    int64_t begin = chunk * per;
    int64_t end = std::min(count, begin + per);
    if (begin < end) body(begin, end);
  });
}

}  // namespace qalc
