#pragma once
#include <cstdint>

namespace colloquy {

// A second thread for the kernels (the machines this runs on have few cores; one helper is what
// pays). parallel2(f) runs f(0) on the calling thread and f(1) on the helper, and returns when
// both are done; when the helper is off (setThreads(1)), busy (another thread of the process holds
// it: a worker thread's kernels then run alone), or the work is small, it runs f(0) then f(1)
// inline. Callers split work so that each part computes the same thing either way: results do
// not depend on the number of threads.
using PartFn = void (*)(void* ctx, int part);
void parallel2(PartFn f, void* ctx, bool worthIt);
void setThreads(int n);
int threads();

// Calls f(part) with a lambda: parallel2 for lambdas with captures.
template <class F>
void parallel2(F&& f, bool worthIt) {
  parallel2([](void* c, int part) { (*static_cast<F*>(c))(part); }, &f, worthIt);
}

}  // namespace colloquy
