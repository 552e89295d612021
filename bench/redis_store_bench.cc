// redis_store_bench: decisions per second of the Redis store with many checks in flight, side by
// side with redis-benchmark running EVALSHA of the same script against the same Redis — the
// ceiling a client can reach, since the script's run time in Redis is what both measure.
//
// Usage: redis_store_bench [seconds=5] [in_flight=512] [repetitions=3] [unix]
// (unix: the store's runs again through the server's Unix socket, with the ratios to TCP)
// Starts its own redis-server on a free loopback port (testlib/redis_server.h) and stops it.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "floodgate/redis_store.h"
#include "store_load.h"
#include "testlib/redis_server.h"

namespace {

using namespace std::chrono_literals;
using floodgate::Policy;

using floodgate::bench::kKeyspace;

// run_store(): checks/s with `in_flight` checks always outstanding. `adopted`: the checks are
// made on a loop that adopted a connection (as the HTTP workers do), so those made in one turn
// of it go out as one script call; otherwise each check is its own EVALSHA over the pool.
double run_store(const floodgate::RedisOptions& where, int seconds, int in_flight, bool adopted,
                 std::uint64_t& failures) {
  floodgate::RedisOptions o = where;
  o.timeout = 1s;
  o.max_in_flight = 1 << 20;
  boost::asio::io_context io{1};  // an adopted loop must outlive the store
  floodgate::RedisStore store(o);
  if (!store.wait_connected(5s)) {
    std::fprintf(stderr, "cannot connect to redis\n");
    std::exit(1);
  }
  const Policy policy = Policy::fixed_window(1'000'000'000, std::chrono::minutes(1)).value();
  floodgate::bench::Load load(store, policy, in_flight);
  auto& slots = load.slots;
  auto& idle = load.idle;
  auto& done = load.done;
  auto& stop = load.stop;
  std::thread loop;
  if (adopted) {
    loop = std::thread([&] {
      store.adopt(io);
      boost::asio::steady_timer connected(io, 300ms);  // the adopted connection's handshake
      connected.async_wait([&](const boost::system::error_code&) {
        for (auto& s : slots) s->send();
      });
      boost::asio::steady_timer idle_check(io);
      std::function<void()> wait_idle = [&] {
        if (idle.load() == in_flight) {
          store.release(io);
          return;
        }
        idle_check.expires_after(1ms);
        idle_check.async_wait([&](const boost::system::error_code&) { wait_idle(); });
      };
      wait_idle();
      io.run();
    });
  } else {
    load.start();
  }
  std::this_thread::sleep_for(800ms);  // warm up
  const std::uint64_t start_count = done.load();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const std::uint64_t end_count = done.load();
  const auto t1 = std::chrono::steady_clock::now();
  stop = true;
  while (idle.load() < in_flight) std::this_thread::sleep_for(1ms);
  if (loop.joinable()) loop.join();
  failures = load.failed.load();
  return static_cast<double>(end_count - start_count) /
         std::chrono::duration<double>(t1 - t0).count();
}

double run_redis_benchmark(int port, int seconds, const std::string& sha) {
  // -P 16 pipelined, -c 50 clients, random keys over the same keyspace.
  const int requests = 150'000 * seconds;
  const std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) +
                          " -c 50 -P 16 -q -r " + std::to_string(kKeyspace) + " -n " +
                          std::to_string(requests) + " EVALSHA " + sha +
                          " 1 'fg:fw:{bench:__rand_int__}' '' 1 1000000000 60000000 0 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  // "EVALSHA ...: 123456.79 requests per second, p50=..." (the last such line)
  const auto at = out.rfind(" requests per second");
  if (at == std::string::npos) {
    std::fprintf(stderr, "redis-benchmark said: %s\n", out.c_str());
    return 0;
  }
  auto start = out.rfind(' ', at - 1);
  return std::atof(out.substr(start + 1, at - start - 1).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int in_flight = argc > 2 ? std::atoi(argv[2]) : 512;
  const int repetitions = argc > 3 ? std::atoi(argv[3]) : 3;
  // "unix": the pool's and the adopted loop's runs again through the server's Unix socket.
  const bool unix_too = argc > 4 && std::string(argv[4]) == "unix";
  const std::string socket = "/tmp/fg-bench-redis-" + std::to_string(::getpid()) + ".sock";
  floodgate::testing::RedisServer redis(
      unix_too ? std::vector<std::string>{"--unixsocket", socket, "--unixsocketperm", "700"}
               : std::vector<std::string>{});
  std::printf("redis-server on 127.0.0.1:%d, %d s per run, %d in flight, %u cores\n", redis.port(),
              seconds, in_flight, std::thread::hardware_concurrency());
  floodgate::RedisOptions tcp;
  tcp.port = static_cast<std::uint16_t>(redis.port());
  floodgate::RedisOptions local;
  local.unix_socket = socket;

  // The production fixed_window script, as the store sends it with EVALSHA (loaded on connect).
  const std::string sha = floodgate::RedisStore::script_sha(floodgate::Algorithm::kFixedWindow);
  {
    floodgate::RedisOptions o;
    o.port = static_cast<std::uint16_t>(redis.port());
    floodgate::RedisStore loader(o);
    if (!loader.wait_connected(5s)) return 1;
  }

  std::vector<double> pooled;
  std::vector<double> batched;
  std::vector<double> theirs;
  std::vector<double> pooled_unix;
  std::vector<double> batched_unix;
  for (int r = 0; r < repetitions; ++r) {
    std::uint64_t pool_failures = 0;
    std::uint64_t batch_failures = 0;
    const double pool_rate = run_store(tcp, seconds, in_flight, false, pool_failures);
    const double batch_rate = run_store(tcp, seconds, in_flight, true, batch_failures);
    if (unix_too) {
      std::uint64_t unix_failures = 0;
      pooled_unix.push_back(run_store(local, seconds, in_flight, false, unix_failures));
      batched_unix.push_back(run_store(local, seconds, in_flight, true, unix_failures));
      std::printf(
          "run %d: Unix socket: pool %.0f checks/s, adopted loop %.0f checks/s (%llu failed)\n",
          r + 1, pooled_unix.back(), batched_unix.back(),
          static_cast<unsigned long long>(unix_failures));
    }
    const double bench_rate = run_redis_benchmark(redis.port(), seconds, sha);
    std::printf(
        "run %d: RedisStore pool %.0f checks/s (%llu failed), adopted loop %.0f checks/s "
        "(%llu failed), redis-benchmark EVALSHA %.0f/s; ratios %.2f and %.2f\n",
        r + 1, pool_rate, static_cast<unsigned long long>(pool_failures), batch_rate,
        static_cast<unsigned long long>(batch_failures), bench_rate,
        bench_rate > 0 ? pool_rate / bench_rate : 0.0,
        bench_rate > 0 ? batch_rate / bench_rate : 0.0);
    std::fflush(stdout);
    pooled.push_back(pool_rate);
    batched.push_back(batch_rate);
    theirs.push_back(bench_rate);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double a = median(pooled);
  const double c = median(batched);
  const double b = median(theirs);
  std::printf(
      "median: RedisStore pool %.0f checks/s (%.2fx), adopted loop %.0f checks/s (%.2fx), "
      "redis-benchmark -c 50 -P 16 %.0f/s\n",
      a, b > 0 ? a / b : 0.0, c, b > 0 ? c / b : 0.0, b);
  if (unix_too) {
    const double pu = median(pooled_unix);
    const double bu = median(batched_unix);
    std::printf(
        "median over the Unix socket: pool %.0f checks/s (%.2fx TCP), adopted loop %.0f "
        "checks/s (%.2fx TCP)\n",
        pu, a > 0 ? pu / a : 0.0, bu, c > 0 ? bu / c : 0.0);
  }
  redis.stop();
  std::remove(socket.c_str());
  return 0;
}
