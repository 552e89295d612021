// Overrides on simulated time: which override a check gets (exact key, longest prefix, the rule's
// before any rule's), what add() refuses and naming which field, replacement, expiry on read, the
// bound on entries, and threads reading while another changes them.
#include "admin/overrides.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace floodgate::admin {
namespace {

using namespace std::chrono_literals;

constexpr Micros kStart{1'800'000'000'000'000};

NewOverride fixed(std::optional<std::string> key, std::int64_t limit,
                  std::optional<std::string> prefix = std::nullopt,
                  std::optional<std::string> rule = std::nullopt) {
  NewOverride o;
  o.key = std::move(key);
  o.key_prefix = std::move(prefix);
  o.rule = std::move(rule);
  o.spec.algorithm = "fixed_window";
  o.spec.limit = Number::of(limit);
  o.spec.window = Number::of(60);
  o.added_by = "127.0.0.1";
  return o;
}

std::uint64_t limit_for(const Overrides& o, std::string_view key, std::string_view rule = "") {
  const auto p = o.find(key, rule);
  return p ? p->limit() : 0;
}

const auto kAnyRule = [](std::string_view) { return true; };

TEST(Overrides, NoneSetFindsNothing) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  EXPECT_FALSE(o.find("user:1", "").has_value());
}

TEST(Overrides, ExactKeyBeforeTheLongestPrefix) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  ASSERT_TRUE(
      std::holds_alternative<Override>(o.add(fixed(std::nullopt, 10, "tenant:"), kAnyRule)));
  ASSERT_TRUE(
      std::holds_alternative<Override>(o.add(fixed(std::nullopt, 20, "tenant:acme:"), kAnyRule)));
  ASSERT_TRUE(std::holds_alternative<Override>(o.add(fixed("tenant:acme:1", 30), kAnyRule)));
  EXPECT_EQ(limit_for(o, "tenant:acme:1"), 30U);  // exact
  EXPECT_EQ(limit_for(o, "tenant:acme:2"), 20U);  // the longer prefix
  EXPECT_EQ(limit_for(o, "tenant:other"), 10U);
  EXPECT_EQ(limit_for(o, "tenant:"), 10U);  // a prefix matches the key equal to it
  EXPECT_EQ(limit_for(o, "tenant"), 0U);    // shorter than every prefix
  EXPECT_EQ(limit_for(o, "user:1"), 0U);
}

TEST(Overrides, TheRulesOwnOverrideBeforeOneForAnyRule) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  ASSERT_TRUE(std::holds_alternative<Override>(o.add(fixed("k", 5), kAnyRule)));
  ASSERT_TRUE(
      std::holds_alternative<Override>(o.add(fixed("k", 7, std::nullopt, "login"), kAnyRule)));
  ASSERT_TRUE(
      std::holds_alternative<Override>(o.add(fixed(std::nullopt, 9, "p", "search"), kAnyRule)));
  EXPECT_EQ(limit_for(o, "k", "login"), 7U);
  EXPECT_EQ(limit_for(o, "k", "search"), 5U);  // exact key for any rule beats a prefix
  EXPECT_EQ(limit_for(o, "k", ""), 5U);
  EXPECT_EQ(limit_for(o, "pq", "search"), 9U);
  EXPECT_EQ(limit_for(o, "pq", "login"), 0U);  // the prefix override is search's only
  EXPECT_EQ(limit_for(o, "pq", ""), 0U);
}

TEST(Overrides, RefusesBadInputNamingTheField) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  auto field_of = [&](NewOverride n,
                      const std::function<bool(std::string_view)>& known = kAnyRule) {
    auto r = o.add(n, known);
    const auto* e = std::get_if<Overrides::AddError>(&r);
    return e ? e->field : std::string("(accepted)");
  };
  EXPECT_EQ(field_of(fixed(std::nullopt, 5)), "key");             // neither key nor prefix
  EXPECT_EQ(field_of(fixed("a", 5, "b")), "key");                 // both
  EXPECT_EQ(field_of(fixed("", 5)), "key");                       // empty
  EXPECT_EQ(field_of(fixed(std::nullopt, 5, "")), "key_prefix");  // empty prefix
  EXPECT_EQ(field_of(fixed(std::string(513, 'k'), 5)), "key");    // too long
  EXPECT_EQ(field_of(fixed("a", 0)), "limit");                    // out of range
  EXPECT_EQ(field_of(fixed("a", 5, std::nullopt, "nope"),
                     [](std::string_view name) { return name == "login"; }),
            "rule");
  NewOverride no_algorithm = fixed("a", 5);
  no_algorithm.spec.algorithm.reset();
  EXPECT_EQ(field_of(no_algorithm), "algorithm");
  NewOverride wrong_parameter = fixed("a", 5);
  wrong_parameter.spec.refill_rate = Number::of(3);
  EXPECT_EQ(field_of(wrong_parameter), "refill_rate");
  NewOverride bad_expiry = fixed("a", 5);
  bad_expiry.expires_in_s = -1;
  EXPECT_EQ(field_of(bad_expiry), "expires_in_s");
  EXPECT_TRUE(o.entries().empty());  // nothing refused was stored
}

TEST(Overrides, TheSameKeyAndRuleAgainReplacesTheOlderOne) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  const auto first = std::get<Override>(o.add(fixed("k", 5), kAnyRule));
  std::vector<Override> replaced;
  const auto second = std::get<Override>(o.add(fixed("k", 8), kAnyRule, &replaced));
  EXPECT_NE(first.id, second.id);
  ASSERT_EQ(replaced.size(), 1U);
  EXPECT_EQ(replaced[0].id, first.id);
  ASSERT_EQ(o.entries().size(), 1U);
  EXPECT_EQ(limit_for(o, "k"), 8U);
  // Another rule, or a prefix of the same text, is another override.
  replaced.clear();
  ASSERT_TRUE(
      std::holds_alternative<Override>(o.add(fixed(std::nullopt, 3, "k"), kAnyRule, &replaced)));
  EXPECT_TRUE(replaced.empty());
  EXPECT_EQ(o.entries().size(), 2U);
}

TEST(Overrides, ExpireOnTimeAndRemoveByID) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  NewOverride short_lived = fixed("k", 5);
  short_lived.expires_in_s = 2.5;
  const auto added = std::get<Override>(o.add(short_lived, kAnyRule));
  EXPECT_EQ(added.expires, kStart + 2500ms);
  const auto kept = std::get<Override>(o.add(fixed("j", 6), kAnyRule));
  clock.advance(2499ms);
  EXPECT_EQ(limit_for(o, "k"), 5U);
  clock.advance(1ms);
  EXPECT_EQ(limit_for(o, "k"), 0U);
  EXPECT_EQ(o.entries().size(), 1U);
  EXPECT_FALSE(o.remove(added.id).has_value());  // gone already
  EXPECT_EQ(o.remove(kept.id)->key, "j");
  EXPECT_FALSE(o.find("j", "").has_value());
}

TEST(Overrides, BoundedByMaxEntries) {
  ManualClock clock(kStart);
  Overrides o(clock, 2, {});
  ASSERT_TRUE(std::holds_alternative<Override>(o.add(fixed("a", 1), kAnyRule)));
  ASSERT_TRUE(std::holds_alternative<Override>(o.add(fixed("b", 1), kAnyRule)));
  auto full = o.add(fixed("c", 1), kAnyRule);
  ASSERT_TRUE(std::holds_alternative<Overrides::AddError>(full));
  EXPECT_EQ(std::get<Overrides::AddError>(full).status, 409);
  // Replacing one that is there is not growth.
  EXPECT_TRUE(std::holds_alternative<Override>(o.add(fixed("b", 2), kAnyRule)));
}

TEST(Overrides, ReplaceAllAndBuildFromStoredParts) {
  ManualClock clock(kStart);
  Overrides o(clock, 100, {});
  Override stored;
  stored.id = "ov_0000000000000001";
  stored.key = "x";
  stored.spec.algorithm = "token_bucket";
  stored.spec.capacity = Number::of(4);
  stored.spec.refill_rate = Number::of_real(0.5);
  auto built = o.build(stored);
  ASSERT_TRUE(built.has_value());
  EXPECT_EQ(built->policy.algorithm(), Algorithm::kTokenBucket);
  EXPECT_EQ(built->policy.limit(), 4U);
  Override expired = *built;
  expired.id = "ov_0000000000000002";
  expired.key = "y";
  expired.expires = kStart - 1s;
  o.replace_all({*built, expired});
  EXPECT_EQ(limit_for(o, "x"), 4U);
  EXPECT_EQ(limit_for(o, "y"), 0U);
  EXPECT_EQ(o.entries().size(), 1U);
  stored.spec.capacity = Number::of(-1);
  EXPECT_FALSE(o.build(stored).has_value());
}

TEST(Overrides, ThreadsReadWhileAnotherChangesThem) {
  ManualClock clock(kStart);
  Overrides o(clock, 1000, {});
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> seen{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const auto p = o.find("tenant:7", "");
        // Whatever is found is one of the limits written, never a torn value.
        if (p) {
          EXPECT_TRUE(p->limit() >= 1 && p->limit() <= 200);
          seen.fetch_add(1);
        }
      }
    });
  }
  for (int i = 1; i <= 200; ++i) {
    auto added = o.add(fixed(std::nullopt, i, "tenant:"), kAnyRule);
    ASSERT_TRUE(std::holds_alternative<Override>(added));
    if (i % 3 == 0) o.remove(std::get<Override>(added).id);
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(limit_for(o, "tenant:7"), 200U);
}

}  // namespace
}  // namespace floodgate::admin
