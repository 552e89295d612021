// DecisionLog on a ManualClock: what a line says, which decisions each mode logs, and the cap per
// second with its report of dropped lines.
#include "observe/decision_log.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace floodgate::observe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

struct Logged {
  ManualClock clock{Micros{1'700'000'000'000'000}};
  std::vector<std::string> lines;
  DecisionLog make(DecisionLog::Mode mode, int per_second = 100) {
    return DecisionLog({.mode = mode,
                        .per_second = per_second,
                        .write = [this](std::string_view l) { lines.emplace_back(l); },
                        .clock = &clock});
  }
};

Decision denied() {
  Decision d;
  d.allowed = false;
  d.reason = DenyReason::kLimited;
  d.limit = 5;
  d.remaining = 0;
  d.reset_after = 41'234'100us;
  d.retry_after = 1'500'001us;
  return d;
}

TEST(DecisionLog, ALineNamesTheDecisionAndQuotesTheKey) {
  Logged l;
  DecisionLog log = l.make(DecisionLog::Mode::kDenied);
  const Decision d = denied();
  log.record({.source = "http",
              .path = "/v1/check",
              .key = "rule/login//ali\"ce",
              .algorithm = Algorithm::kSlidingWindowLog,
              .decision = &d,
              .degraded = false,
              .client = "203.0.113.7"});
  EXPECT_THAT(l.lines, ElementsAre("decision denied source=http path=/v1/check "
                                   "key=\"rule/login//ali\\\"ce\" algorithm=sliding_window_log "
                                   "limit=5 remaining=0 retry_after_ms=1501 reason=limited "
                                   "degraded=false client=203.0.113.7"));
  Decision never = denied();
  never.retry_after = kNever;
  never.reason = DenyReason::kCostExceedsCapacity;
  log.record({.source = "grpc", .path = "edge", .key = "k", .decision = &never, .degraded = true});
  EXPECT_THAT(l.lines.back(), HasSubstr("retry_after_ms=never reason=cost_exceeds_capacity "
                                        "degraded=true"));
  EXPECT_THAT(l.lines.back(), ::testing::Not(HasSubstr("client=")));
}

TEST(DecisionLog, TheModeSaysWhichDecisionsAreWanted) {
  Logged l;
  EXPECT_FALSE(l.make(DecisionLog::Mode::kOff).wants(false));
  EXPECT_FALSE(l.make(DecisionLog::Mode::kDenied).wants(true));
  EXPECT_TRUE(l.make(DecisionLog::Mode::kDenied).wants(false));
  EXPECT_TRUE(l.make(DecisionLog::Mode::kAll).wants(true));
  EXPECT_EQ(DecisionLog::parse_mode("DENIED"), DecisionLog::Mode::kDenied);
  EXPECT_EQ(DecisionLog::parse_mode("all"), DecisionLog::Mode::kAll);
  EXPECT_EQ(DecisionLog::parse_mode("some"), std::nullopt);
}

TEST(DecisionLog, LinesPastTheCapAreCountedAndReportedTheNextSecond) {
  Logged l;
  DecisionLog log = l.make(DecisionLog::Mode::kDenied, 3);
  const Decision d = denied();
  const DecisionLog::Entry e{.source = "http", .path = "/v1/check", .key = "k", .decision = &d};
  for (int i = 0; i < 10; ++i) log.record(e);
  EXPECT_EQ(l.lines.size(), 3u);
  EXPECT_EQ(log.dropped_total(), 7u);
  l.clock.advance(1s);
  log.record(e);
  ASSERT_EQ(l.lines.size(), 5u);
  EXPECT_EQ(l.lines[3],
            "decision log: 7 line(s) dropped in the last second over LOG_DECISIONS_PER_SECOND=3");
  EXPECT_THAT(l.lines[4], HasSubstr("decision denied"));
  l.clock.advance(1s);
  log.record(e);  // nothing dropped in the second before: no report
  EXPECT_EQ(l.lines.size(), 6u);
}

}  // namespace
}  // namespace floodgate::observe
