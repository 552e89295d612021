// libFuzzer target: a whole request through the Api — method, path, one header and body taken
// from the input — on a memory store, or, for "/" and "/admin/..." paths, through the admin API
// (with its bearer token given, so changes are exercised too). Every answer must be a
// well-formed status below 500.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "admin/admin_api.h"
#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"
#include "observe/metrics.h"
#include "server/http/api.h"

namespace {

class OneHeader final : public floodgate::http::HeaderLookup {
 public:
  std::string_view name, value;
  std::string_view get(std::string_view n) const override {
    if (n == "Authorization") return "Bearer t";
    return n == name ? value : "";
  }
};

// Splits the input at NUL bytes: method, target, header name, header value, body.
std::string_view next_part(std::string_view& in) {
  const auto at = in.find('\0');
  const std::string_view part = in.substr(0, at);
  in = at == std::string_view::npos ? std::string_view{} : in.substr(at + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static floodgate::ManualClock clock{floodgate::Micros{1'800'000'000'000'000}};
  static floodgate::MemoryStore store{clock, {.max_keys = 10'000}};
  static floodgate::Limiter limiter{store};
  static floodgate::observe::Metrics metrics;
  static floodgate::admin::AccessLists lists{clock, 1000};
  static floodgate::admin::Overrides overrides{clock, 1000, {}};
  static floodgate::admin::Stats stats{clock};
  static floodgate::http::Api api{
      limiter, store, metrics, {.lists = &lists, .overrides = &overrides, .stats = &stats}};
  static floodgate::admin::AdminApi admin{{.lists = &lists,
                                           .overrides = &overrides,
                                           .stats = &stats,
                                           .metrics = &metrics,
                                           .store = &store,
                                           .local = &store},
                                          {.token = "t"}};

  std::string_view in(reinterpret_cast<const char*>(data), size);
  OneHeader headers;
  const std::string_view method = next_part(in);
  const std::string_view target = next_part(in);
  headers.name = next_part(in);
  headers.value = next_part(in);
  const floodgate::http::Request request{method, target, in, "127.0.0.1", headers};
  const bool to_admin = target == "/" || target.starts_with("/admin");
  const floodgate::http::Response response = to_admin ? admin.handle(request) : api.handle(request);
  if (response.status < 200 || response.status >= 500) std::abort();
  clock.advance(floodgate::Micros{1000});
  return 0;
}
