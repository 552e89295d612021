#include "floodgate/store.h"

namespace floodgate {

std::string_view to_string(StoreStatus status) {
  switch (status) {
    case StoreStatus::kOk:
      return "ok";
    case StoreStatus::kUnavailable:
      return "unavailable";
    case StoreStatus::kTimeout:
      return "timeout";
  }
  return "unknown";
}

std::string_view to_string(FailureMode mode) {
  switch (mode) {
    case FailureMode::kFailOpen:
      return "fail_open";
    case FailureMode::kFailClosed:
      return "fail_closed";
    case FailureMode::kLocal:
      return "local";
  }
  return "fail_open";
}

std::optional<FailureMode> parse_failure_mode(std::string_view name) {
  if (name == "fail_open") return FailureMode::kFailOpen;
  if (name == "fail_closed") return FailureMode::kFailClosed;
  if (name == "local") return FailureMode::kLocal;
  return std::nullopt;
}

}  // namespace floodgate
