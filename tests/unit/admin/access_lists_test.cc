// AccessLists on simulated time: what add() accepts and refuses, the blocklist over the allowlist,
// expiry on read, replace_all(), and threads reading while another changes the lists.
#include "admin/access_lists.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace floodgate::admin {
namespace {

using namespace std::chrono_literals;

constexpr Micros kStart{1'800'000'000'000'000};

NewEntry key(std::string k, std::optional<double> expires_in_s = std::nullopt) {
  NewEntry e;
  e.key = std::move(k);
  e.expires_in_s = expires_in_s;
  e.added_by = "127.0.0.1";
  return e;
}

NewEntry ip(std::string text) {
  NewEntry e;
  e.ip = std::move(text);
  return e;
}

IpAddress addr(std::string_view text) { return parse_ip(text).value(); }

TEST(AccessLists, EmptyListsSayNothing) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 100);
  const IpAddress a = addr("10.0.0.1");
  EXPECT_EQ(lists.check("k", &a), Listed::kNone);
  EXPECT_EQ(lists.check("k", nullptr), Listed::kNone);
}

TEST(AccessLists, KeysAndAddressesOnBothListsTheBlocklistWinning) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 100);
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kAllow, key("vip"))));
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kAllow, ip("10.0.0.0/8"))));
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, ip("10.6.0.0/16"))));
  const IpAddress inside = addr("10.1.1.1");
  const IpAddress blocked = addr("10.6.1.1");
  const IpAddress outside = addr("192.0.2.1");
  EXPECT_EQ(lists.check("vip", nullptr), Listed::kAllowlisted);
  EXPECT_EQ(lists.check("other", &inside), Listed::kAllowlisted);
  EXPECT_EQ(lists.check("vip", &blocked), Listed::kBlocklisted);
  EXPECT_EQ(lists.check("other", &outside), Listed::kNone);
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("vip"))));
  EXPECT_EQ(lists.check("vip", nullptr), Listed::kBlocklisted);
  EXPECT_EQ(lists.entries(ListKind::kAllow).size(), 2u);
  EXPECT_EQ(lists.entries(ListKind::kBlock).size(), 2u);
}

TEST(AccessLists, RefusesBadEntriesNamingTheField) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 100);
  auto field_of = [&](const NewEntry& e) {
    auto r = lists.add(ListKind::kBlock, e);
    const auto* error = std::get_if<AccessLists::AddError>(&r);
    return error ? error->field : std::string("(stored)");
  };
  EXPECT_EQ(field_of(NewEntry{}), "ip");
  NewEntry both = key("k");
  both.ip = "1.2.3.4";
  EXPECT_EQ(field_of(both), "ip");
  EXPECT_EQ(field_of(ip("1.2.3.4/40")), "ip");
  EXPECT_EQ(field_of(key("")), "key");
  EXPECT_EQ(field_of(key(std::string(513, 'k'))), "key");
  EXPECT_EQ(field_of(key("k", 0.0)), "expires_in_s");
  EXPECT_EQ(field_of(key("k", -3.0)), "expires_in_s");
  NewEntry long_note = key("k");
  long_note.note = std::string(2000, 'n');
  EXPECT_EQ(field_of(long_note), "note");
  EXPECT_TRUE(lists.entries(ListKind::kBlock).empty());
}

TEST(AccessLists, EntriesExpireOnReadAndLeaveTheListing) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 100);
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("brief", 2.0))));
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("longer", 10))));
  ASSERT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("forever"))));
  EXPECT_EQ(lists.check("brief", nullptr), Listed::kBlocklisted);
  clock.advance(1999ms);
  EXPECT_EQ(lists.check("brief", nullptr), Listed::kBlocklisted);
  clock.advance(1ms);
  EXPECT_EQ(lists.check("brief", nullptr), Listed::kNone);
  EXPECT_EQ(lists.check("longer", nullptr), Listed::kBlocklisted);
  EXPECT_EQ(lists.entries(ListKind::kBlock).size(), 2u);
  clock.advance(10s);
  EXPECT_EQ(lists.check("longer", nullptr), Listed::kNone);
  EXPECT_EQ(lists.check("forever", nullptr), Listed::kBlocklisted);
  EXPECT_EQ(lists.entries(ListKind::kBlock).size(), 1u);
}

TEST(AccessLists, RemoveAndReplaceAll) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 100);
  auto added = lists.add(ListKind::kBlock, key("k"));
  const std::string id = std::get<ListEntry>(added).id;
  EXPECT_EQ(id.rfind("bl_", 0), 0u);
  EXPECT_FALSE(lists.remove(ListKind::kAllow, id));  // the other list
  const auto removed = lists.remove(ListKind::kBlock, id);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->value, "k");
  EXPECT_FALSE(lists.remove(ListKind::kBlock, id));
  EXPECT_EQ(lists.check("k", nullptr), Listed::kNone);

  ListEntry shared;
  shared.id = "al_0123456789abcdef";
  shared.list = ListKind::kAllow;
  shared.value = "from-redis";
  ListEntry gone = shared;
  gone.id = "al_fedcba9876543210";
  gone.value = "expired";
  gone.expires = kStart - 1s;
  lists.replace_all({shared, gone});
  EXPECT_EQ(lists.check("from-redis", nullptr), Listed::kAllowlisted);
  EXPECT_EQ(lists.check("expired", nullptr), Listed::kNone);
  EXPECT_EQ(lists.all().size(), 1u);
}

TEST(AccessLists, BoundedPerList) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 2);
  EXPECT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("a"))));
  EXPECT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("b"))));
  auto full = lists.add(ListKind::kBlock, key("c"));
  ASSERT_TRUE(std::holds_alternative<AccessLists::AddError>(full));
  EXPECT_EQ(std::get<AccessLists::AddError>(full).status, 409);
  EXPECT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, key("a"))));
  EXPECT_TRUE(std::holds_alternative<ListEntry>(lists.add(ListKind::kAllow, key("c"))));
}

// Readers on several threads while a writer adds and removes: every answer is one of the states
// the lists went through, and the last change is seen by every reader.
TEST(AccessListsConcurrency, ReadersSeeEveryPublishedChange) {
  ManualClock clock(kStart);
  AccessLists lists(clock, 1000);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      const IpAddress a = addr("198.51.100.9");
      while (!stop.load()) {
        const Listed l = lists.check("key-0", &a);
        if (l == Listed::kAllowlisted) ++bad;  // never on the allowlist
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    auto added = lists.add(ListKind::kBlock, key("key-" + std::to_string(i % 5)));
    if (i % 3 == 0) lists.remove(ListKind::kBlock, std::get<ListEntry>(added).id);
  }
  ASSERT_TRUE(
      std::holds_alternative<ListEntry>(lists.add(ListKind::kBlock, ip("198.51.100.0/24"))));
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  std::thread late([&] {
    const IpAddress a = addr("198.51.100.9");
    EXPECT_EQ(lists.check("anything", &a), Listed::kBlocklisted);
  });
  late.join();
}

}  // namespace
}  // namespace floodgate::admin
