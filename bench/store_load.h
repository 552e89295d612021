// File: bench/store_load.h
//
// The store-level load of the Redis benches: `in_flight` checks always outstanding on one store,
// each completion counting itself and sending the next, keys drawn from a fixed keyspace.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "floodgate/store.h"

namespace floodgate::bench {

inline constexpr int kKeyspace = 100'000;

// LoadSlot: one check kept in flight; its completion counts it and sends the next.
struct LoadSlot final : Completion {
  Store* store = nullptr;
  const Policy* policy = nullptr;
  std::atomic<bool>* stop = nullptr;
  std::atomic<std::uint64_t>* done = nullptr;
  std::atomic<std::uint64_t>* failed = nullptr;
  std::atomic<int>* idle = nullptr;
  std::minstd_rand rng;
  const std::vector<std::string>* keys = nullptr;  // the keys to draw from; null: "bench:<n>"
  std::string key;
  CheckOp op;
  Outcome outcome;

  void send() {
    if (keys != nullptr) {
      key = (*keys)[rng() % keys->size()];
    } else {
      key = "bench:" + std::to_string(rng() % kKeyspace);
    }
    op = {key, policy, 1};
    store->check({&op, 1}, {&outcome, 1}, *this);
  }
  void complete() override {
    done->fetch_add(1, std::memory_order_relaxed);
    if (outcome.status != StoreStatus::kOk) failed->fetch_add(1, std::memory_order_relaxed);
    if (stop->load(std::memory_order_relaxed)) {
      idle->fetch_add(1);
      return;
    }
    send();
  }
};

// Load: the slots and their shared counters.
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<int> idle{0};
  std::vector<std::unique_ptr<LoadSlot>> slots;

  // keys: the keyspace to draw from (must outlive the load); null: kKeyspace keys "bench:<n>".
  Load(Store& store, const Policy& policy, int in_flight,
       const std::vector<std::string>* keys = nullptr) {
    for (int i = 0; i < in_flight; ++i) {
      auto s = std::make_unique<LoadSlot>();
      s->keys = keys;
      s->store = &store;
      s->policy = &policy;
      s->stop = &stop;
      s->done = &done;
      s->failed = &failed;
      s->idle = &idle;
      s->rng.seed(static_cast<unsigned>(i + 1));
      slots.push_back(std::move(s));
    }
  }
  void start() {
    for (auto& s : slots) s->send();
  }
  bool drained() const { return idle.load() == static_cast<int>(slots.size()); }
};

}  // namespace floodgate::bench
