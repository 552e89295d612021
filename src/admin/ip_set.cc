#include "admin/ip_set.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <utility>

namespace floodgate::admin {

using detail::Uint128;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Dotted-quad IPv4 as glibc's inet_pton(AF_INET) reads it: four decimal octets 0..255, no leading
// zeros ("0" is an octet, "00" and "01" are not), nothing before, between or after but the dots.
bool parse_v4(std::string_view text, std::uint32_t& out) {
  std::uint32_t address = 0;
  std::uint32_t octet = 0;
  int octets = 0;
  bool in_octet = false;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      if (in_octet && octet == 0) return false;  // a leading zero
      octet = octet * 10 + static_cast<std::uint32_t>(c - '0');
      if (octet > 255) return false;
      if (!in_octet) {
        if (++octets > 4) return false;
        in_octet = true;
      }
    } else if (c == '.' && in_octet) {
      if (octets == 4) return false;
      address = (address << 8) | octet;
      octet = 0;
      in_octet = false;
    } else {
      return false;
    }
  }
  if (octets < 4) return false;  // also refuses a trailing dot: the fourth octet ends the text
  out = (address << 8) | octet;
  return true;
}

// RFC 4291 text as glibc's inet_pton(AF_INET6) reads it, step for step (resolv/inet_pton.c):
// groups of 1..4 hex digits, one "::" standing for at least one zero group, and a dotted quad
// in place of the last two groups.
std::optional<IpAddress> parse_v6(std::string_view text) {
  constexpr std::size_t kNoGap = 17;
  std::array<std::uint8_t, 16> bytes{};
  std::size_t size = 0;      // bytes written
  std::size_t gap = kNoGap;  // where "::" stands
  const std::size_t n = text.size();
  std::size_t i = 0;
  if (n == 0) return std::nullopt;
  if (text[0] == ':') {  // a leading ':' must begin "::"
    if (n < 2 || text[1] != ':') return std::nullopt;
    i = 1;
  }
  std::size_t group_start = i;
  int digits = 0;
  std::uint32_t group = 0;
  while (i < n) {
    const char c = text[i++];
    if (const int digit = hex_value(c); digit >= 0) {
      if (digits == 4) return std::nullopt;
      group = (group << 4) | static_cast<std::uint32_t>(digit);
      ++digits;
    } else if (c == ':') {
      group_start = i;
      if (digits == 0) {
        if (gap != kNoGap) return std::nullopt;  // a second "::" (or ":::")
        gap = size;
        continue;
      }
      if (i == n || size + 2 > bytes.size()) return std::nullopt;  // trailing ':', ninth group
      bytes[size++] = static_cast<std::uint8_t>(group >> 8);
      bytes[size++] = static_cast<std::uint8_t>(group & 0xff);
      digits = 0;
      group = 0;
    } else if (c == '.' && size + 4 <= bytes.size()) {
      std::uint32_t v4 = 0;
      if (!parse_v4(text.substr(group_start), v4)) return std::nullopt;
      for (int shift = 24; shift >= 0; shift -= 8) {
        bytes[size++] = static_cast<std::uint8_t>(v4 >> shift);
      }
      digits = 0;
      break;  // the dotted quad ran to the end of the text
    } else {
      return std::nullopt;
    }
  }
  if (digits > 0) {
    if (size + 2 > bytes.size()) return std::nullopt;
    bytes[size++] = static_cast<std::uint8_t>(group >> 8);
    bytes[size++] = static_cast<std::uint8_t>(group & 0xff);
  }
  if (gap != kNoGap) {
    if (size == bytes.size()) return std::nullopt;  // "::" would stand for no group at all
    const std::size_t tail = size - gap;
    std::memmove(bytes.data() + bytes.size() - tail, bytes.data() + gap, tail);
    std::memset(bytes.data() + gap, 0, bytes.size() - tail - gap);
    size = bytes.size();
  }
  if (size != bytes.size()) return std::nullopt;
  return IpAddress::from_ipv6_bytes(bytes);
}

Uint128 to_u128(const IpAddress& address) {
  return (static_cast<Uint128>(address.v6_high) << 64) | address.v6_low;
}

std::uint32_t mask_v4(int prefix) {
  return prefix == 0 ? std::uint32_t{0} : ~std::uint32_t{0} << (32 - prefix);
}

Uint128 mask_v6(int prefix) { return prefix == 0 ? Uint128{0} : ~Uint128{0} << (128 - prefix); }

// The network of `address` with `prefix` in range for its family.
Cidr network_of(const IpAddress& address, int prefix) {
  if (address.family == IpFamily::kV4) {
    return {IpAddress::ipv4(address.v4 & mask_v4(prefix)), prefix};
  }
  const Uint128 network = to_u128(address) & mask_v6(prefix);
  // Not ipv6(): clearing low bits cannot make a non-mapped address mapped, and the Cidr must
  // stay IPv6.
  return {IpAddress{IpFamily::kV6, 0, static_cast<std::uint64_t>(network >> 64),
                    static_cast<std::uint64_t>(network)},
          prefix};
}

// A range of one family's addresses, both ends included.
template <class Key>
struct Range {
  Key first;
  Key last;
};

// The boundaries of the union of `ranges`: the first address of each merged range and the one
// after its last (none when it reaches `max`), strictly increasing.
template <class Key>
std::vector<Key> boundaries_of(std::vector<Range<Key>> ranges, Key max) {
  std::sort(ranges.begin(), ranges.end(),
            [](const Range<Key>& a, const Range<Key>& b) { return a.first < b.first; });
  std::vector<Key> boundaries;
  boundaries.reserve(2 * ranges.size());
  std::size_t i = 0;
  while (i < ranges.size()) {
    const Key first = ranges[i].first;
    Key last = ranges[i].last;
    ++i;
    // Swallow every range that overlaps this one or starts right after it.
    while (i < ranges.size() && last != max && ranges[i].first <= last + 1) {
      last = std::max(last, ranges[i].last);
      ++i;
    }
    boundaries.push_back(first);
    if (last == max) break;  // every range left starts inside this one
    boundaries.push_back(last + 1);
  }
  return boundaries;
}

}  // namespace

IpAddress IpAddress::from_ipv6_bytes(std::span<const std::uint8_t, 16> bytes) {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  for (std::size_t i = 0; i < 8; ++i) high = (high << 8) | static_cast<std::uint64_t>(bytes[i]);
  for (std::size_t i = 8; i < 16; ++i) low = (low << 8) | static_cast<std::uint64_t>(bytes[i]);
  return ipv6(high, low);
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    if (text.size() < 2 || text.back() != ']') return std::nullopt;
    return parse_v6(text.substr(1, text.size() - 2));  // refuses "[1.2.3.4]": no colon
  }
  // IPv4 first: it is the common client, and IPv6 text fails it at its first ':' or letter.
  if (std::uint32_t v4 = 0; parse_v4(text, v4)) return IpAddress::ipv4(v4);
  return parse_v6(text);
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string* error) {
  const auto fail = [error](std::string message) -> std::optional<Cidr> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  const std::size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const std::optional<IpAddress> address = parse_ip(address_text);
  if (!address) return fail("is not an IPv4 or IPv6 address or CIDR");

  // The prefix length counts the bits of the address as written: "::ffff:10.0.0.0/104" is
  // 10.0.0.0/8.
  const bool written_v6 = address_text.find(':') != std::string_view::npos;
  const int max_prefix = written_v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const char* range = written_v6 ? "prefix length must be 0..128 for IPv6"
                                   : "prefix length must be 0..32 for IPv4";
    if (digits.empty() || digits.size() > 3) return fail(range);
    int value = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return fail(range);
      value = value * 10 + (c - '0');
    }
    if (value > max_prefix) return fail(range);
    if (digits.size() > 1 && digits[0] == '0') {
      return fail("prefix length must not have leading zeros");
    }
    prefix = value;
  }
  if (written_v6 && address->family == IpFamily::kV4) {  // IPv4-mapped
    if (prefix < 96) return fail("prefix length must be 96..128 for an IPv4-mapped address");
    prefix -= 96;
  }

  const Cidr network = network_of(*address, prefix);
  if (network.address != *address) {
    return fail("has host bits set; the network is " + to_string(network));
  }
  return network;
}

std::string to_string(const IpAddress& address) {
  char buffer[48];  // the longest IPv6 text is 39 characters
  char* out = buffer;
  char* const end = buffer + sizeof buffer;
  if (address.family == IpFamily::kV4) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      out = std::to_chars(out, end, (address.v4 >> shift) & 0xff).ptr;
      if (shift > 0) *out++ = '.';
    }
    return std::string(buffer, out);
  }

  std::array<std::uint16_t, 8> groups{};
  for (std::size_t i = 0; i < 4; ++i) {
    groups[i] = static_cast<std::uint16_t>(address.v6_high >> (48 - 16 * i));
    groups[i + 4] = static_cast<std::uint16_t>(address.v6_low >> (48 - 16 * i));
  }
  // RFC 5952 4.2: "::" replaces the longest run of two or more zero groups, the first on a tie.
  std::size_t gap = groups.size();  // none
  std::size_t gap_length = 1;       // a lone zero group stays "0"
  for (std::size_t i = 0; i < groups.size();) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < groups.size() && groups[j] == 0) ++j;
    if (j - i > gap_length) {
      gap = i;
      gap_length = j - i;
    }
    i = j;
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (i == gap) {
      *out++ = ':';
      *out++ = ':';
      i += gap_length - 1;
      continue;
    }
    if (i > 0 && i != gap + gap_length) *out++ = ':';
    out = std::to_chars(out, end, groups[i], 16).ptr;
  }
  return std::string(buffer, out);
}

std::string to_string(const Cidr& cidr) {
  return to_string(cidr.address) + '/' + std::to_string(cidr.prefix);
}

namespace detail {
namespace {

constexpr int kMaxStride = 16;  // 65,536 buckets: 512 KiB of slots at most in one node
constexpr int kMaxDepth = 8;    // nodes on a path; below that a bucket is a leaf of any size

template <class Key>
constexpr int kKeyBits = static_cast<int>(8 * sizeof(Key));

// A bucket of at most one cache line of boundaries is searched rather than indexed further.
template <class Key>
constexpr std::size_t kLeafSize = 64 / sizeof(Key);

int leading_zeros(std::uint32_t x) { return std::countl_zero(x); }

int leading_zeros(Uint128 x) {
  const auto high = static_cast<std::uint64_t>(x >> 64);
  if (high != 0) return std::countl_zero(high);
  return 64 + std::countl_zero(static_cast<std::uint64_t>(x));
}

// The top `bits` bits set.
template <class Key>
Key prefix_mask(int bits) {
  return bits == 0 ? Key{0} : static_cast<Key>(~Key{0} << (kKeyBits<Key> - bits));
}

// How many of first[0, n) are <= x, first[] sorted: a binary search whose steps are conditional
// moves, not branches the data would make unpredictable.
template <class Key>
std::size_t count_at_or_below(const Key* first, std::size_t n, Key x) {
  if (n == 0) return 0;
  const Key* base = first;
  while (n > 1) {
    const std::size_t half = n / 2;
    base = base[half] <= x ? base + half : base;
    n -= half;
  }
  return static_cast<std::size_t>(base - first) + static_cast<std::size_t>(*base <= x);
}

}  // namespace

template <class Key>
BoundarySet<Key> BoundarySet<Key>::build(std::vector<Key> boundaries) {
  BoundarySet set;
  set.boundaries_ = std::move(boundaries);
  if (!set.boundaries_.empty()) set.add_node(0, set.boundaries_.size(), 0);
  set.boundaries_.shrink_to_fit();
  set.nodes_.shrink_to_fit();
  set.slots_.shrink_to_fit();
  return set;
}

// A node for boundaries_[begin, end) (not empty; all in one bucket of the parent, if any), its
// slots, and a child for each bucket with more than a leaf's worth. Returns the node's index.
template <class Key>
std::uint32_t BoundarySet<Key>::add_node(std::size_t begin, std::size_t end, int depth) {
  constexpr int kBits = kKeyBits<Key>;
  const std::size_t count = end - begin;
  // As many buckets as boundaries, up to twice as many: about one boundary a bucket when they
  // spread evenly over the bits after their shared prefix.
  const int stride = std::clamp(static_cast<int>(std::bit_width(count)), 1, kMaxStride);
  // The prefix all of them share (the first and the last share it, the set is sorted), shortened
  // if need be to leave `stride` bits below it.
  const int shared = std::min(
      leading_zeros(static_cast<Key>(boundaries_[begin] ^ boundaries_[end - 1])), kBits - stride);

  Node node{};
  node.low = static_cast<Key>(boundaries_[begin] & prefix_mask<Key>(shared));
  node.high = static_cast<Key>(node.low | ~prefix_mask<Key>(shared));
  node.begin = static_cast<std::uint32_t>(begin);
  node.end = static_cast<std::uint32_t>(end);
  node.slots = static_cast<std::uint32_t>(slots_.size());
  node.shift = static_cast<std::uint32_t>(kBits - shared - stride);
  const auto id = static_cast<std::uint32_t>(nodes_.size());
  nodes_.push_back(node);

  const std::size_t buckets = std::size_t{1} << stride;
  slots_.resize(slots_.size() + buckets + 1, Slot{0, 0});
  std::size_t i = begin;
  for (std::size_t bucket = 0; bucket <= buckets; ++bucket) {
    while (i < end &&
           static_cast<std::size_t>((boundaries_[i] - node.low) >> node.shift) < bucket) {
      ++i;
    }
    slots_[node.slots + bucket].begin = static_cast<std::uint32_t>(i);
  }
  if (depth + 1 >= kMaxDepth) return id;
  for (std::size_t bucket = 0; bucket < buckets; ++bucket) {
    const std::size_t first = slots_[node.slots + bucket].begin;
    const std::size_t last = slots_[node.slots + bucket + 1].begin;
    if (last - first <= kLeafSize<Key>) continue;
    const std::uint32_t child = add_node(first, last, depth + 1);  // may move slots_
    slots_[node.slots + bucket].child = child;
  }
  return id;
}

template <class Key>
std::size_t BoundarySet<Key>::rank(Key x) const {
  const Node* node = nodes_.data();
  for (;;) {
    // Outside the node's prefix: below or above every boundary under it.
    if (x < node->low) return node->begin;
    if (x > node->high) return node->end;
    const Slot* slot =
        slots_.data() + node->slots + static_cast<std::size_t>((x - node->low) >> node->shift);
    if (slot->child != 0) {
      node = nodes_.data() + slot->child;
      continue;
    }
    // Every boundary before the bucket is below x, every one after it above.
    const std::uint32_t begin = slot[0].begin;
    return begin + count_at_or_below(boundaries_.data() + begin, slot[1].begin - begin, x);
  }
}

template <class Key>
std::size_t BoundarySet<Key>::memory_bytes() const {
  return boundaries_.capacity() * sizeof(Key) + nodes_.capacity() * sizeof(Node) +
         slots_.capacity() * sizeof(Slot);
}

template class BoundarySet<std::uint32_t>;
template class BoundarySet<Uint128>;

}  // namespace detail

IpSet IpSet::build(std::span<const Cidr> cidrs) {
  std::vector<Range<std::uint32_t>> v4;
  std::vector<Range<Uint128>> v6;
  for (const Cidr& cidr : cidrs) {
    if (cidr.address.family == IpFamily::kV4) {
      const std::uint32_t mask = mask_v4(std::clamp(cidr.prefix, 0, 32));
      const std::uint32_t first = cidr.address.v4 & mask;
      v4.push_back({first, first | ~mask});
    } else {
      const Uint128 mask = mask_v6(std::clamp(cidr.prefix, 0, 128));
      const Uint128 first = to_u128(cidr.address) & mask;
      v6.push_back({first, first | ~mask});
    }
  }
  IpSet set;
  set.size_ = cidrs.size();
  set.v4_ =
      detail::BoundarySet<std::uint32_t>::build(boundaries_of(std::move(v4), ~std::uint32_t{0}));
  set.v6_ = detail::BoundarySet<Uint128>::build(boundaries_of(std::move(v6), ~Uint128{0}));
  return set;
}

bool IpSet::lookup(const IpAddress& address) const {
  if (address.family == IpFamily::kV4) return v4_.contains(address.v4);
  return v6_.contains(to_u128(address));
}

std::size_t IpSet::memory_bytes() const {
  return sizeof(IpSet) + v4_.memory_bytes() + v6_.memory_bytes();
}

}  // namespace floodgate::admin
