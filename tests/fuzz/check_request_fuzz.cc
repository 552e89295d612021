// libFuzzer target: the check-request JSON decoder and the policy it builds. Any input must give
// either a request or an ApiError with a 4xx status — never a crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/http/check_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace floodgate::http;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  ApiError error;
  auto request = parse_check_request(body, error);
  if (!request) {
    if (error.status < 400 || error.status > 499 || error.code.empty()) std::abort();
    return 0;
  }
  if (!policy_for(*request, floodgate::PolicyDefaults{}, error) &&
      (error.status < 400 || error.status > 499 || error.code.empty())) {
    std::abort();
  }
  (void)cost_of(*request, error);
  return 0;
}
