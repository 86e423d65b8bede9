#include "parallel.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace colloquy {
namespace {

struct Helper {
  std::mutex m;
  std::condition_variable cv;
  PartFn fn = nullptr;
  void* ctx = nullptr;
  bool pending = false, done = false;

  Helper() {
    // Detached and never destroyed: a joinable std::thread destroyed at exit would terminate.
    std::thread([this] { loop(); }).detach();
  }
  void loop() {
    for (;;) {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [this] { return pending; });
      pending = false;
      PartFn f = fn;
      void* c = ctx;
      lock.unlock();
      f(c, 1);
      lock.lock();
      done = true;
      cv.notify_all();
    }
  }
  void run(PartFn f, void* c) {
    {
      std::lock_guard<std::mutex> lock(m);
      fn = f; ctx = c; done = false; pending = true;
    }
    cv.notify_all();
    f(c, 0);
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [this] { return done; });
  }
};

std::atomic<int> nThreads{1};  // opt-in (COLLOQUY_THREADS=2): measured no faster end to end on 2 cores
std::atomic<bool> inUse{false};
Helper* helper = nullptr;
std::once_flag helperOnce;

}  // namespace

void setThreads(int n) { nThreads = n >= 2 ? 2 : 1; }
int threads() { return nThreads; }

void parallel2(PartFn f, void* ctx, bool worthIt) {
  bool expected = false;
  if (!worthIt || nThreads < 2 || !inUse.compare_exchange_strong(expected, true)) {
    f(ctx, 0);
    f(ctx, 1);
    return;
  }
  std::call_once(helperOnce, [] { helper = new Helper(); });
  helper->run(f, ctx);
  inUse = false;
}

}  // namespace colloquy
