#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/limiter.h"
#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(Limiter, AnswersFromTheMemoryStore) {
  Harness h;
  Limiter limiter(h.store);
  const auto p = Policy::gcra(2, 1s).value();
  EXPECT_TRUE(limiter.check("k", p).decision.allowed);
  EXPECT_TRUE(limiter.check("k", p).decision.allowed);
  const Outcome o = limiter.check("k", p);
  EXPECT_EQ(o.status, StoreStatus::kOk);
  EXPECT_FALSE(o.decision.allowed);
  EXPECT_EQ(o.decision.retry_after, 500ms);
}

// A store that answers later, from a thread of its own, as a network store does.
class LaterStore final : public Store {
 public:
  explicit LaterStore(StoreStatus status) : status_(status) {}
  ~LaterStore() override {
    for (std::thread& t : threads_) t.join();
  }
  void check(std::span<const CheckOp> ops, std::span<Outcome> outcomes, Completion& done) override {
    threads_.emplace_back([this, ops, outcomes, &done] {
      for (std::size_t i = 0; i < ops.size(); ++i) {
        outcomes[i].status = status_;
        outcomes[i].decision.allowed = status_ == StoreStatus::kOk;
        outcomes[i].decision.remaining = ops[i].cost;
      }
      done.complete();
    });
  }
  std::string_view name() const override { return "later"; }

 private:
  StoreStatus status_;
  std::vector<std::thread> threads_;
};

TEST(Limiter, WaitsForAStoreThatCompletesOnAnotherThread) {
  LaterStore store(StoreStatus::kOk);
  Limiter limiter(store);
  const auto p = Policy::fixed_window(10, 1s).value();
  for (std::uint64_t cost = 1; cost <= 50; ++cost) {
    const Outcome o = limiter.check("k", p, cost);
    ASSERT_TRUE(o.decision.allowed);
    ASSERT_EQ(o.decision.remaining, cost);
  }
}

TEST(Limiter, PassesStoreFailuresThroughForTheCallerToApplyItsFailureMode) {
  LaterStore store(StoreStatus::kTimeout);
  Limiter limiter(store);
  const Outcome o = limiter.check("k", Policy::fixed_window(10, 1s).value());
  EXPECT_EQ(o.status, StoreStatus::kTimeout);
  EXPECT_EQ(to_string(o.status), "timeout");
}

}  // namespace
}  // namespace floodgate::testing
