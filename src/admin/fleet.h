// File: admin/fleet.h
//
// Fleet: the instances that share one store, as the admin side sees them. A change made through
// one instance's admin API is saved here, and every instance (this one included) applies what is
// saved; each instance publishes a stats report here, and GET /admin/stats?scope=cluster merges
// the reports of every live instance. With the memory store there is no fleet (null): changes are
// local to the process and the cluster scope is this instance alone.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace floodgate::admin {

class Fleet {
 public:
  virtual ~Fleet() = default;

  // Done: "" when the change is saved (every instance applies it: at once when its announcement
  // arrives, within a poll interval when that is lost), else why not.
  using Done = std::function<void(const std::string& error)>;

  // save(): stores `record` (admin/records.h) under `id`, replacing what had that id, and
  // removes the records `replaces` (the older entries of the same key the new one replaced).
  virtual void save(const std::string& id, const std::string& record,
                    const std::vector<std::string>& replaces, Done done) = 0;
  // erase(): removes the record `id`.
  virtual void erase(const std::string& id, Done done) = 0;

  // reports(): the last stats report of every live instance, this one's included (JSON objects,
  // as Stats reports are written by the admin API), as last fetched.
  virtual std::vector<std::string> reports() const = 0;
};

}  // namespace floodgate::admin
