#include <ctime>

#include "floodgate/clock.h"

namespace floodgate {

Micros SystemClock::now() const {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return Micros{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000};
}

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

}  // namespace floodgate
