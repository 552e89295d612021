#include "admin/access_lists.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_set.hpp>

#include "core/key_hash.h"

namespace floodgate::admin {
namespace {

constexpr std::size_t kMaxKeyBytes = 512;  // as a check's key (server/http/check_request.h)
constexpr std::size_t kMaxNoteBytes = 1024;
constexpr double kMaxExpiresInS = 10.0 * 365 * 24 * 3600;

using KeySet = boost::unordered_flat_set<std::string, core::StringHash, std::equal_to<>>;

// same_target(): the two entries list the same address (or network) or key in the same list, so
// the newer replaces the older.
bool same_target(const ListEntry& a, const ListEntry& b) {
  return a.list == b.list && a.is_ip == b.is_ip && a.value == b.value;
}

std::string new_id(ListKind list) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}_{:016x}", list == ListKind::kAllow ? "al" : "bl", rng());
}

}  // namespace

std::string_view to_string(ListKind list) {
  return list == ListKind::kAllow ? "allowlist" : "blocklist";
}

// The common case is a client on neither list: `any_ips` and `any_keys` (both lists together)
// answer it with one lookup each; only a client they hold is looked up again, in the block list
// first.
struct AccessLists::Snapshot {
  IpSet any_ips;
  IpSet allow_ips;
  IpSet block_ips;
  KeySet any_keys;
  KeySet allow_keys;
  KeySet block_keys;
  Micros next_expiry = Micros::max();  // the earliest expiry among the entries
  bool empty = true;
};

AccessLists::AccessLists(const Clock& clock, std::size_t max_entries)
    : clock_(clock), max_entries_(max_entries), published_(std::make_shared<const Snapshot>()) {}

AccessLists::~AccessLists() = default;

const AccessLists::Snapshot& AccessLists::snapshot() const { return published_.get(); }

Listed AccessLists::check(std::string_view key, const IpAddress* ip) const {
  const Snapshot* s = &snapshot();
  if (s->empty) return Listed::kNone;
  if (s->next_expiry != Micros::max() && clock_.now() >= s->next_expiry) {
    {
      std::lock_guard lock(mu_);
      auto& self = const_cast<AccessLists&>(*this);  // expiry is a change made on read
      self.drop_expired_locked(clock_.now());
    }
    s = &snapshot();
    if (s->empty) return Listed::kNone;
  }
  const bool ip_listed = ip != nullptr && s->any_ips.contains(*ip);
  const bool key_listed = !s->any_keys.empty() && s->any_keys.contains(key);
  if (!ip_listed && !key_listed) return Listed::kNone;
  const bool blocked =
      (ip_listed && s->block_ips.contains(*ip)) || (key_listed && s->block_keys.contains(key));
  return blocked ? Listed::kBlocklisted : Listed::kAllowlisted;
}

std::variant<ListEntry, AccessLists::AddError> AccessLists::add(ListKind list,
                                                                const NewEntry& entry,
                                                                std::vector<ListEntry>* replaced) {
  auto invalid = [](std::string field, std::string message) {
    return AddError{400, "invalid_parameter", std::move(field), std::move(message)};
  };
  if (entry.ip.has_value() == entry.key.has_value()) {
    return AddError{400, entry.ip ? "invalid_parameter" : "missing_field", "ip",
                    "give exactly one of \"ip\" (an IPv4 or IPv6 address or CIDR) and \"key\""};
  }
  ListEntry e;
  e.list = list;
  if (entry.ip) {
    std::string error;
    const auto cidr = parse_cidr(*entry.ip, &error);
    if (!cidr) return invalid("ip", error);
    e.is_ip = true;
    e.value = to_string(*cidr);
  } else {
    if (entry.key->empty()) return invalid("key", "must not be empty");
    if (entry.key->size() > kMaxKeyBytes) {
      return invalid("key", fmt::format("must be at most {} bytes", kMaxKeyBytes));
    }
    e.value = *entry.key;
  }
  if (entry.note.size() > kMaxNoteBytes) {
    return invalid("note", fmt::format("must be at most {} bytes", kMaxNoteBytes));
  }
  const Micros now = clock_.now();
  if (entry.expires_in_s) {
    const double s = *entry.expires_in_s;
    if (!std::isfinite(s) || s <= 0 || s > kMaxExpiresInS) {
      return invalid("expires_in_s", "must be a number of seconds above 0 and at most 10 years");
    }
    e.expires = now + Micros(std::max<std::int64_t>(1, std::llround(s * 1e6)));
  }
  e.note = entry.note;
  e.added_by = entry.added_by;
  e.created = now;
  e.id = new_id(list);

  std::lock_guard lock(mu_);
  drop_expired_locked(now);
  std::size_t count = 0;
  std::vector<ListEntry> same;  // entries the new one replaces
  for (const ListEntry& old : entries_) {
    if (same_target(old, e)) {
      same.push_back(old);
    } else {
      count += old.list == list ? 1U : 0U;
    }
  }
  if (count >= max_entries_) {
    return AddError{409, "list_full", e.is_ip ? "ip" : "key",
                    fmt::format("the {} holds {} entries, its limit (ADMIN_MAX_ENTRIES)",
                                to_string(list), count)};
  }
  std::erase_if(entries_, [&](const ListEntry& old) { return same_target(old, e); });
  if (replaced != nullptr) *replaced = std::move(same);
  entries_.push_back(e);
  publish_locked();
  return e;
}

std::optional<ListEntry> AccessLists::remove(ListKind list, std::string_view id) {
  std::lock_guard lock(mu_);
  drop_expired_locked(clock_.now());
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const ListEntry& e) { return e.list == list && e.id == id; });
  if (it == entries_.end()) return std::nullopt;
  ListEntry removed = std::move(*it);
  entries_.erase(it);
  publish_locked();
  return removed;
}

std::vector<ListEntry> AccessLists::entries(ListKind list) const {
  std::vector<ListEntry> out;
  const Micros now = clock_.now();
  std::lock_guard lock(mu_);
  for (const ListEntry& e : entries_) {
    if (e.list == list && (e.expires.count() == 0 || e.expires > now)) out.push_back(e);
  }
  return out;
}

std::vector<ListEntry> AccessLists::all() const {
  std::vector<ListEntry> out;
  const Micros now = clock_.now();
  std::lock_guard lock(mu_);
  for (const ListEntry& e : entries_) {
    if (e.expires.count() == 0 || e.expires > now) out.push_back(e);
  }
  return out;
}

bool AccessLists::empty() const { return snapshot().empty; }

void AccessLists::put(ListEntry entry) {
  std::lock_guard lock(mu_);
  std::erase_if(entries_,
                [&](const ListEntry& e) { return e.id == entry.id || same_target(e, entry); });
  entries_.push_back(std::move(entry));
  drop_expired_locked(clock_.now());
  publish_locked();
}

void AccessLists::erase_id(std::string_view id) {
  std::lock_guard lock(mu_);
  if (std::erase_if(entries_, [&](const ListEntry& e) { return e.id == id; }) > 0) {
    publish_locked();
  }
}

void AccessLists::replace_all(std::vector<ListEntry> entries) {
  std::lock_guard lock(mu_);
  entries_ = std::move(entries);
  drop_expired_locked(clock_.now());
  publish_locked();
}

void AccessLists::drop_expired_locked(Micros now) {
  const auto before = entries_.size();
  std::erase_if(entries_,
                [&](const ListEntry& e) { return e.expires.count() != 0 && e.expires <= now; });
  if (entries_.size() != before || next_expiry_ <= now) publish_locked();
}

void AccessLists::publish_locked() {
  auto s = std::make_shared<Snapshot>();
  std::vector<Cidr> allow_ips;
  std::vector<Cidr> block_ips;
  for (const ListEntry& e : entries_) {
    const bool allow = e.list == ListKind::kAllow;
    if (e.is_ip) {
      // Stored in canonical form by add(); parsing again cannot fail.
      if (auto cidr = parse_cidr(e.value, nullptr))
        (allow ? allow_ips : block_ips).push_back(*cidr);
    } else {
      (allow ? s->allow_keys : s->block_keys).insert(e.value);
      s->any_keys.insert(e.value);
    }
    if (e.expires.count() != 0) s->next_expiry = std::min(s->next_expiry, e.expires);
  }
  s->allow_ips = IpSet::build(allow_ips);
  s->block_ips = IpSet::build(block_ips);
  allow_ips.insert(allow_ips.end(), block_ips.begin(), block_ips.end());
  s->any_ips = IpSet::build(allow_ips);
  s->empty = entries_.empty();
  next_expiry_ = s->next_expiry;
  published_.publish(std::move(s));
}

}  // namespace floodgate::admin
