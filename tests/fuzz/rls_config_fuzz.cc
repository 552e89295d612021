// libFuzzer target: envoyproxy/ratelimit configs and the descriptor matcher. The input is a YAML
// file, then optionally a NUL byte and request descriptors, one per line:
// "domain|key=value,key=value". A config either loads or is refused with messages; matching any
// descriptor against a loaded config never crashes, and neither does ShouldRateLimit (rls::Service
// on the memory store) over all of them: it answers one status per descriptor, or an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "floodgate/memory_store.h"
#include "rls/config.h"
#include "rls/matcher.h"
#include "rls/service.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string yaml(input.substr(0, nul));
  auto loaded = floodgate::rls::load_config_text(yaml, "fuzz.yaml");
  auto* config = std::get_if<floodgate::rls::Config>(&loaded);
  if (config == nullptr) {
    const auto& errors = std::get<floodgate::rls::LoadErrors>(loaded);
    if (errors.messages.empty()) __builtin_trap();  // a refusal always says why
    return 0;
  }
  (void)floodgate::rls::describe(*config);
  if (nul == std::string_view::npos) return 0;
  static floodgate::ManualClock clock{floodgate::Micros{1'700'000'000'000'000}};
  static floodgate::MemoryStore store(clock, {.max_keys = 10'000, .shards = 4});
  static floodgate::Limiter limiter(store);
  floodgate::rls::ServiceOptions options;
  options.clock = &clock;
  options.response_headers = true;
  options.draft_headers = true;
  floodgate::rls::Service service(
      limiter, options, std::make_shared<const floodgate::rls::Config>(std::move(*config)));
  struct Sync final : floodgate::rls::Call {
    bool finished = false;
    void done() override { finished = true; }
  } call;
  const auto current = service.config();
  std::string_view rest = input.substr(nul + 1);
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const auto bar = line.find('|');
    const std::string_view domain = line.substr(0, bar);
    floodgate::rls::Descriptor descriptor;
    std::string_view entries =
        bar == std::string_view::npos ? std::string_view() : line.substr(bar + 1);
    while (!entries.empty() && descriptor.entries.size() < 16) {
      const auto comma = entries.find(',');
      const std::string_view entry = entries.substr(0, comma);
      entries = comma == std::string_view::npos ? std::string_view() : entries.substr(comma + 1);
      const auto eq = entry.find('=');
      descriptor.entries.push_back({entry.substr(0, eq), eq == std::string_view::npos
                                                             ? std::string_view()
                                                             : entry.substr(eq + 1)});
    }
    const floodgate::rls::Descriptor descriptors[] = {descriptor, descriptor};
    (void)floodgate::rls::match_all(*current, domain, descriptors);
    if (call.request.domain.empty()) call.request.domain = domain;
    if (call.request.descriptors.size() < 80) call.request.descriptors.push_back(descriptor);
  }
  service.should_rate_limit(call);
  if (!call.finished) __builtin_trap();  // the memory store answers inline
  if (!call.error && call.response.statuses.size() != call.request.descriptors.size()) {
    __builtin_trap();
  }
  clock.advance(floodgate::Micros{1'000'000});
  return 0;
}
