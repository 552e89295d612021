#include "store/memory/big_reader_lock.h"

namespace floodgate::store {
namespace {

std::mutex registry_mu;
ReaderFlag* registry_head = nullptr;  // guarded by registry_mu

// Owns the calling thread's flag: links it in on construction, out when the thread ends.
struct Registration {
  ReaderFlag flag;
  Registration() {
    std::lock_guard lock(registry_mu);
    flag.next = registry_head;
    registry_head = &flag;
  }
  ~Registration() {
    std::lock_guard lock(registry_mu);
    for (ReaderFlag** p = &registry_head; *p != nullptr; p = &(*p)->next) {
      if (*p == &flag) {
        *p = flag.next;
        break;
      }
    }
  }
};

}  // namespace

ReaderFlag& this_thread_reader() {
  thread_local Registration registration;
  return registration.flag;
}

void BigReaderLock::lock() {
  writers_.lock();
  writer_.store(true, std::memory_order_seq_cst);
  std::lock_guard lock(registry_mu);
  for (ReaderFlag* f = registry_head; f != nullptr; f = f->next) {
    for (int spins = 0; f->reading.load(std::memory_order_seq_cst) != 0; ++spins) relax(spins);
  }
}

}  // namespace floodgate::store
