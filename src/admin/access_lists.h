// File: admin/access_lists.h
//
// AccessLists: the allowlist and the blocklist an operator steers at runtime (POST
// /admin/allowlist, /admin/blocklist). An entry names a client address or CIDR ("ip") or a
// check's key ("key"), with an optional expiry and note, and who added it. Allowlisted: allowed,
// nothing consumed. Blocklisted: denied. The blocklist wins over the allowlist.
//
// The hot path asks check() on every decision, so the lists are read from an immutable snapshot
// (two IpSets, two hash sets of keys) that changes are published as, and each thread keeps a
// reference to the snapshot it last saw: a check costs one atomic load when nothing changed, and
// with both lists empty nothing more. Expiry is checked on read: the snapshot knows its earliest
// expiry, and the first check past it builds the next snapshot without the expired entries.
//
// Entries are local to the process; a shared store (Redis) replaces them all with replace_all().
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "admin/ip_set.h"
#include "admin/published.h"
#include "floodgate/clock.h"
#include "floodgate/policy.h"

namespace floodgate::admin {

enum class ListKind : std::uint8_t { kAllow, kBlock };
std::string_view to_string(ListKind list);  // "allowlist", "blocklist"

struct ListEntry {
  std::string id;  // "al_…" or "bl_…", unique in the process (and across instances: random)
  ListKind list = ListKind::kAllow;
  bool is_ip = false;  // an address or CIDR (value is its canonical text), else a key
  std::string value;
  std::string note;
  std::string added_by;  // the address the admin request came from
  Micros created{0};     // wall time
  Micros expires{0};     // wall time; 0: never
};

// What the lists say about one check.
enum class Listed : std::uint8_t { kNone, kAllowlisted, kBlocklisted };

// NewEntry: what an admin request asks to add (validated by add()).
struct NewEntry {
  std::optional<std::string> ip;
  std::optional<std::string> key;
  std::optional<double> expires_in_s;
  std::string note;
  std::string added_by;
};

class AccessLists {
 public:
  // `max_entries` bounds each list (ADMIN_MAX_ENTRIES).
  AccessLists(const Clock& clock, std::size_t max_entries);
  ~AccessLists();
  AccessLists(const AccessLists&) = delete;
  AccessLists& operator=(const AccessLists&) = delete;

  // Why add() refused an entry: a field and a message (400), or the list is full (409).
  struct AddError {
    int status = 400;
    std::string code;
    std::string field;
    std::string message;
  };
  // add(): validates and stores the entry, in force for the next check. Returns it, or why not.
  // The same value added again to the same list replaces the older entry (its id changes).
  // `replaced`, when given, learns the entries the new one replaced.
  std::variant<ListEntry, AddError> add(ListKind list, const NewEntry& entry,
                                        std::vector<ListEntry>* replaced = nullptr);
  // remove(): the entry removed, or nullopt when no live entry of `list` has that id.
  std::optional<ListEntry> remove(ListKind list, std::string_view id);
  // entries(): the live entries of `list`, oldest first.
  std::vector<ListEntry> entries(ListKind list) const;
  // put(): `entry` (as a shared store holds it) is in force, replacing any entry with its id or
  // with its value in its list. erase_id(): the entry with that id, in either list, is gone.
  void put(ListEntry entry);
  void erase_id(std::string_view id);
  // replace_all(): the lists become `entries` (both lists; expired ones are dropped).
  void replace_all(std::vector<ListEntry> entries);
  // all(): every live entry of both lists (to publish them to a shared store).
  std::vector<ListEntry> all() const;

  // check(): the hot path. `ip` is the client's address when the request tells it.
  Listed check(std::string_view key, const IpAddress* ip) const;

  // empty(): both lists are empty (as of the snapshot this thread sees): a caller can skip
  // preparing check()'s arguments (parsing an address).
  bool empty() const;

 private:
  struct Snapshot;
  const Snapshot& snapshot() const;
  void publish_locked();  // builds and publishes a snapshot of entries_
  void drop_expired_locked(Micros now);

  const Clock& clock_;
  const std::size_t max_entries_;
  mutable std::mutex mu_;
  std::vector<ListEntry> entries_;      // guarded by mu_
  Micros next_expiry_ = Micros::max();  // guarded by mu_: of the published snapshot
  Published<Snapshot> published_;
};

}  // namespace floodgate::admin
