// The admin side's stored records: every list entry and override reads back as what was written,
// and damaged or foreign records are refused rather than half-read.
#include "admin/records.h"

#include <gtest/gtest.h>

namespace floodgate::admin {
namespace {

TEST(Records, ListEntriesRoundTrip) {
  ListEntry e;
  e.id = "bl_00000000000000ff";
  e.list = ListKind::kBlock;
  e.is_ip = true;
  e.value = "2001:db8::/32";
  e.note = "a \"quoted\" note\nwith a newline";
  e.added_by = "::1";
  e.created = Micros{1'800'000'000'123'456};
  e.expires = Micros{1'800'000'600'000'000};
  const auto back = parse_record(record(e));
  ASSERT_TRUE(back.has_value());
  const auto& r = std::get<ListEntry>(*back);
  EXPECT_EQ(r.id, e.id);
  EXPECT_EQ(r.list, e.list);
  EXPECT_TRUE(r.is_ip);
  EXPECT_EQ(r.value, e.value);
  EXPECT_EQ(r.note, e.note);
  EXPECT_EQ(r.added_by, e.added_by);
  EXPECT_EQ(r.created, e.created);
  EXPECT_EQ(r.expires, e.expires);
}

TEST(Records, OverridesRoundTripWithTheirParametersAsWritten) {
  Override o;
  o.id = "ov_0000000000000abc";
  o.key = "tenant:";
  o.prefix = true;
  o.rule = "search";
  o.spec.algorithm = "gcra";
  o.spec.limit = Number::of(100);
  o.spec.window = Number::of_real(0.5);
  o.spec.burst = Number::of(7);
  o.created = Micros{42};
  const auto back = parse_record(record(o));
  ASSERT_TRUE(back.has_value());
  const auto& r = std::get<Override>(*back);
  EXPECT_EQ(r.id, o.id);
  EXPECT_TRUE(r.prefix);
  EXPECT_EQ(r.key, "tenant:");
  EXPECT_EQ(r.rule, "search");
  EXPECT_EQ(r.spec.algorithm, "gcra");
  EXPECT_EQ(r.spec.limit->integer, 100);
  EXPECT_TRUE(r.spec.limit->is_integer);
  EXPECT_DOUBLE_EQ(r.spec.window->real, 0.5);
  EXPECT_EQ(r.spec.burst->integer, 7);
  EXPECT_FALSE(r.spec.refill_rate.has_value());
  EXPECT_EQ(r.created, Micros{42});
}

TEST(Records, RefusesWhatIsNotARecord) {
  EXPECT_FALSE(parse_record("").has_value());
  EXPECT_FALSE(parse_record("[]").has_value());
  EXPECT_FALSE(parse_record(R"({"kind":"blocklist"})").has_value());  // no id
  EXPECT_FALSE(parse_record(R"({"kind":"graylist","id":"x","key":"k"})").has_value());
  EXPECT_FALSE(parse_record(R"({"kind":"blocklist","id":"x"})").has_value());  // no value
  EXPECT_FALSE(
      parse_record(R"({"kind":"blocklist","id":"x","key":"k","ip":"1.2.3.4"})").has_value());
  EXPECT_FALSE(parse_record(R"({"kind":"allowlist","id":"x","ip":"1.2.3"})").has_value());
  EXPECT_FALSE(parse_record(R"({"kind":"override","id":"x","key":"k","limit":"ten"})").has_value());
}

TEST(Records, ShownWithExpiryInSeconds) {
  ListEntry e;
  e.id = "al_0000000000000001";
  e.value = "k";
  e.created = Micros{1'800'000'000'000'000};
  e.expires = e.created + std::chrono::seconds(90);
  const std::string shown = entry_json(e, e.created + std::chrono::seconds(30));
  EXPECT_NE(shown.find(R"("expires_in_s":60.000)"), std::string::npos) << shown;
  EXPECT_NE(shown.find(R"("created_at":"2027-01-15T08:00:00.000Z")"), std::string::npos) << shown;
}

}  // namespace
}  // namespace floodgate::admin
