// redis_cluster_bench: decisions per second of the Redis store on a 3-master Redis Cluster and on
// one standalone Redis, the same store-level load side by side (runs interleaved), with the CPU
// time each process used per check: on a machine with fewer cores than masters + client, the
// ratio is bounded by the cores, and the CPU figures say by which process and what more cores
// would give.
//
// A fourth run sends the cluster only keys of its first master's slots (a third of the keyspace):
// that master then has a core to itself, as the standalone server has, and its rate is what each
// master adds on a machine with a core per master: the measured basis of the projection.
//
// Usage: redis_cluster_bench [seconds=5] [in_flight=512] [repetitions=3]
// Starts a redis-server (testlib/redis_server.h) and a cluster of 3 masters without replicas
// (scripts/redis-cluster.sh), and stops both.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/redis_store.h"
#include "store/redis/cluster_slot.h"
#include "store_load.h"
#include "testlib/command.h"
#include "testlib/redis_server.h"

namespace {

using namespace std::chrono_literals;
using floodgate::Policy;

const std::string kScript = FLOODGATE_SOURCE_DIR "/scripts/redis-cluster.sh";

std::pair<int, std::string> run(const std::string& command) {
  return floodgate::testing::run_command(command);
}

// cpu_seconds(): user + system CPU time the process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::atof(field.c_str());  // utime, stime
    if (i == 15) break;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct Result {
  double rate = 0;                 // checks/s
  std::uint64_t failures = 0;      // checks not decided
  double client_us = 0;            // this process' CPU per check, microseconds
  std::vector<double> redis_us;    // each redis-server's CPU per check
  std::vector<double> redis_busy;  // each redis-server's share of one core
};

Result run_store(floodgate::RedisOptions o, const std::vector<pid_t>& servers, int seconds,
                 int in_flight, const std::vector<std::string>* keys = nullptr) {
  o.timeout = 1s;
  o.max_in_flight = 1 << 20;
  floodgate::RedisStore store(o);
  if (!store.wait_connected(10s)) {
    std::fprintf(stderr, "cannot connect: %s\n", store.health().error.c_str());
    std::exit(1);
  }
  const Policy policy = Policy::fixed_window(1'000'000'000, std::chrono::minutes(1)).value();
  floodgate::bench::Load load(store, policy, in_flight, keys);
  load.start();
  std::this_thread::sleep_for(800ms);  // warm up
  const std::uint64_t start_count = load.done.load();
  const double client0 = cpu_seconds(0);
  std::vector<double> redis0;
  for (pid_t pid : servers) redis0.push_back(cpu_seconds(pid));
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const std::uint64_t end_count = load.done.load();
  const auto t1 = std::chrono::steady_clock::now();
  const double client1 = cpu_seconds(0);
  Result r;
  const double elapsed = std::chrono::duration<double>(t1 - t0).count();
  const double checks = static_cast<double>(end_count - start_count);
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const double used = cpu_seconds(servers[i]) - redis0[i];
    r.redis_us.push_back(checks > 0 ? used / checks * 1e6 : 0);
    r.redis_busy.push_back(used / elapsed);
  }
  load.stop = true;
  while (!load.drained()) std::this_thread::sleep_for(1ms);
  r.rate = checks / elapsed;
  r.failures = load.failed.load();
  r.client_us = checks > 0 ? (client1 - client0) / checks * 1e6 : 0;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string describe(const Result& r) {
  std::string s = std::to_string(static_cast<long long>(r.rate)) + " checks/s (" +
                  std::to_string(r.failures) + " failed); CPU per check: client " +
                  std::to_string(r.client_us).substr(0, 4) + " us, redis";
  for (std::size_t i = 0; i < r.redis_us.size(); ++i) {
    s += " " + std::to_string(r.redis_us[i]).substr(0, 4) + " us (" +
         std::to_string(static_cast<int>(r.redis_busy[i] * 100)) + "% busy)";
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int in_flight = argc > 2 ? std::atoi(argv[2]) : 512;
  const int repetitions = argc > 3 ? std::atoi(argv[3]) : 3;

  floodgate::testing::RedisServer single;
  char tmpl[] = "/tmp/fg-cluster-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  auto [status, out] = run(kScript + " up --replicas-per-master 0 --dir " + dir);
  if (status != 0) {
    std::fprintf(stderr, "redis-cluster.sh up failed:\n%s\n", out.c_str());
    return 1;
  }
  std::string url;
  std::vector<pid_t> masters;
  int first_slot = -1;
  int last_slot = -1;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("REDIS_URL=", 0) == 0) url = line.substr(10);
    int port = 0;
    int pid = 0;
    int first = 0;
    int last = 0;
    if (std::sscanf(line.c_str(), "master 127.0.0.1:%d pid=%d slots=%d-%d", &port, &pid, &first,
                    &last) == 4) {
      masters.push_back(pid);
      if (first_slot < 0) {
        first_slot = first;
        last_slot = last;
      }
    }
  }
  // The first master's share of the keyspace: the keys "bench:<n>" whose slot it serves.
  std::vector<std::string> first_master_keys;
  for (int n = 0; n < floodgate::bench::kKeyspace; ++n) {
    std::string key = "bench:" + std::to_string(n);
    const int slot = floodgate::redis::key_slot(
        floodgate::RedisStore::redis_key(floodgate::Algorithm::kFixedWindow, key));
    if (slot >= first_slot && slot <= last_slot) first_master_keys.push_back(std::move(key));
  }
  std::printf(
      "standalone redis-server on 127.0.0.1:%d; cluster %s (3 masters, no replicas); %d s per "
      "run, %d checks in flight, %u cores\n",
      single.port(), url.c_str(), seconds, in_flight, std::thread::hardware_concurrency());

  floodgate::RedisOptions standalone;
  standalone.port = static_cast<std::uint16_t>(single.port());
  floodgate::RedisOptions unbatched = standalone;
  unbatched.max_batch = 1;
  const floodgate::RedisOptions cluster = floodgate::parse_redis_url(url).value();

  std::map<std::string, std::vector<double>> rates;
  for (int r = 0; r < repetitions; ++r) {
    const Result a = run_store(standalone, {single.pid()}, seconds, in_flight);
    const Result b = run_store(unbatched, {single.pid()}, seconds, in_flight);
    const Result c = run_store(cluster, masters, seconds, in_flight);
    const Result d = run_store(cluster, masters, seconds, in_flight, &first_master_keys);
    std::printf(
        "run %d:\n  standalone, batched:      %s\n  standalone, one per call: %s\n"
        "  cluster, 3 masters:       %s\n  cluster, 1st master only: %s\n",
        r + 1, describe(a).c_str(), describe(b).c_str(), describe(c).c_str(), describe(d).c_str());
    std::fflush(stdout);
    rates["standalone"].push_back(a.rate);
    rates["unbatched"].push_back(b.rate);
    rates["cluster"].push_back(c.rate);
    rates["one master"].push_back(d.rate);
  }
  const double a = median(rates["standalone"]);
  const double b = median(rates["unbatched"]);
  const double c = median(rates["cluster"]);
  const double d = median(rates["one master"]);
  std::printf(
      "median: standalone batched %.0f checks/s, standalone one per call %.0f, cluster %.0f: "
      "cluster/standalone %.2fx, cluster/standalone one per call %.2fx\n"
      "one master with a core to itself: %.0f checks/s (%.2fx standalone batched); with a core "
      "per master, 3 masters ~ %.2fx standalone batched, each added master +%.2fx\n",
      a, b, c, a > 0 ? c / a : 0.0, b > 0 ? c / b : 0.0, d, a > 0 ? d / a : 0.0,
      a > 0 ? 3 * d / a : 0.0, a > 0 ? d / a : 0.0);
  run(kScript + " down --dir " + dir + " > /dev/null 2>&1");
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return 0;
}
