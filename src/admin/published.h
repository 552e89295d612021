// File: admin/published.h
//
// Published<T>: an immutable value (a snapshot of the lists, of the overrides) that writers
// replace and the hot path reads on every check. Each thread keeps a reference to the snapshot it
// last saw and asks for the current one only when the version moved, so an unchanged value costs
// one atomic load and no reference counting.
//
// Thread-safety: get() from any thread; publish() from any thread (writers serialize their own
// building of the next value).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace floodgate::admin {

namespace detail {
inline std::atomic<std::uint64_t> next_published_owner{1};
}  // namespace detail

template <class T>
class Published {
 public:
  explicit Published(std::shared_ptr<const T> initial)
      : owner_(detail::next_published_owner.fetch_add(1, std::memory_order_relaxed)),
        current_(std::move(initial)) {}
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  // get(): the current value as this thread last saw it, refreshed when it changed. The reference
  // stays valid until this thread's next get() of any Published<T>.
  const T& get() const {
    struct Cache {
      std::uint64_t owner = 0;
      std::uint64_t version = 0;
      std::shared_ptr<const T> value;
    };
    thread_local Cache cache;
    const std::uint64_t version = version_.load(std::memory_order_acquire);
    if (cache.owner != owner_ || cache.version != version || !cache.value) {
      std::lock_guard lock(mu_);
      cache.owner = owner_;
      cache.version = version_.load(std::memory_order_relaxed);
      cache.value = current_;
    }
    return *cache.value;
  }

  // current(): the value itself, shared (for writers and slow paths).
  std::shared_ptr<const T> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }

  void publish(std::shared_ptr<const T> value) {
    {
      std::lock_guard lock(mu_);
      current_ = std::move(value);
      version_.fetch_add(1, std::memory_order_release);
    }
  }

 private:
  const std::uint64_t owner_;  // tells the threads' caches of each instance apart
  mutable std::mutex mu_;
  std::shared_ptr<const T> current_;  // guarded by mu_
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace floodgate::admin
