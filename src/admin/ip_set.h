// File: admin/ip_set.h
//
// IP addresses, CIDRs and IpSet: the `ip` entries of the allowlist and the blocklist (issue 9),
// checked on the hot path of every check whose client address is known.
//
// Text. parse_ip() reads what glibc's inet_pton(3) reads, and nothing else: IPv4 as exactly four
// decimal octets 0..255 without leading zeros ("01.2.3.4" is refused, as inet_pton refuses it),
// IPv6 as RFC 4291 section 2.2 writes it (1..4 hex digits a group in either case, one "::" for one
// or more zero groups, the last 32 bits optionally as a dotted quad). It also takes IPv6 in
// brackets ("[::1]", as URLs and Host headers write it). No zone id ("fe80::1%eth0"): a list entry
// names an address, not an interface. It is our own code rather than inet_pton because the hot
// path parses a client address from a string_view with no NUL after it; a test holds it to
// glibc's inet_pton on random strings.
//
// IPv4-mapped addresses. ::ffff:a.b.c.d (RFC 4291 2.5.5.2) *is* the IPv4 address a.b.c.d: a
// dual-stack socket reports an IPv4 client that way, while an operator writes the entry as IPv4.
// Every way to make an IpAddress (parse_ip, IpAddress::ipv6, from_ipv6_bytes) turns it into
// IPv4, so an IPv4 entry matches the client seen as ::ffff:a.b.c.d and "::ffff:a.b.c.d/n" is the
// entry a.b.c.d/(n-96). Other embeddings of IPv4 (::a.b.c.d, NAT64's 64:ff9b::/96) stay IPv6:
// they are other hosts. An IPv6 entry such as ::/0 therefore never matches an IPv4 client.
//
// IpSet. Per family, the CIDRs become merged, disjoint ranges and each range [first, last] two
// boundaries where membership flips: first and last + 1. An address is in the set when an odd
// number of boundaries are <= it. That count comes from a radix index that adapts to where the
// boundaries lie: a node takes the bits just after the prefix its boundaries share, as many bits
// as it has boundaries (log2 n, at most 16), and a bucket that still holds more than a cache line
// of boundaries (16 IPv4, 4 IPv6) gets a node of its own. A fixed index on the top 16 bits would
// serve IPv4 spread over the Internet but not IPv6, where a real address plan puts thousands of
// entries in one /32 (one bucket of a top-16 index: a 15-step binary search). With the bench's
// lists (bench/ip_set_bench.cc), 70,000 IPv4 entries make a root of 65,536 buckets and a child
// node in most of its 200 crowded /16s (1.25 nodes a lookup on average), and 30,000 IPv6 entries in
// five /32 allocations make a root whose buckets split the /32s apart, one node per /32 indexing
// its next 14 bits, and small nodes where /64s crowd (2 nodes a lookup on average, 4 at most). A
// lookup reads a bucket pair (begin of this bucket and of the next) in each node on its way,
// then searches a leaf of at most one cache line: O(depth + log leaf), depth <= 8 (past that a
// leaf is binary searched whatever its size). Memory is the boundaries (4 or 16 bytes each) plus
// 8 bytes a bucket, at most about two buckets a boundary per level: about 1.4 MB for the 70,000
// IPv4 entries above and 2.2 MB for the 30,000 IPv6 ones (the bench reports memory_MiB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace floodgate::admin {

enum class IpFamily : std::uint8_t { kV4, kV6 };

// IpAddress: one IPv4 or IPv6 address; 24 bytes, trivially copyable. The other family's fields
// are zero and an IPv6 value is never IPv4-mapped (see above), so == compares addresses. Make
// one with ipv4(), ipv6(), from_ipv6_bytes() or parse_ip(), which keep that promise.
struct IpAddress {
  IpFamily family = IpFamily::kV4;
  std::uint32_t v4 = 0;       // kV4: host order, 10.0.0.1 is 0x0a000001
  std::uint64_t v6_high = 0;  // kV6: bits 127..64, the first four groups of the text
  std::uint64_t v6_low = 0;   // kV6: bits 63..0

  static constexpr IpAddress ipv4(std::uint32_t address) { return {IpFamily::kV4, address, 0, 0}; }
  // An IPv4-mapped value (::ffff:0:0/96) gives the IPv4 address.
  static constexpr IpAddress ipv6(std::uint64_t high, std::uint64_t low) {
    if (high == 0 && (low >> 32) == 0xffff) return ipv4(static_cast<std::uint32_t>(low));
    return {IpFamily::kV6, 0, high, low};
  }
  // From the 16 network-order bytes of a socket address (or Asio's address_v6::to_bytes()).
  static IpAddress from_ipv6_bytes(std::span<const std::uint8_t, 16> bytes);

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// Cidr: a network. As parse_cidr() returns it, no bit of `address` is set past `prefix`.
struct Cidr {
  IpAddress address;
  int prefix = 0;  // 0..32 for IPv4, 0..128 for IPv6

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// The address in `text` (see the top of this file), or nullopt. No allocation.
std::optional<IpAddress> parse_ip(std::string_view text);

// "a.b.c.d", "a.b.c.d/n" (n 0..32), IPv6 with or without "/n" (n 0..128); a bare address is a
// /32 or /128. The prefix length is decimal without sign, blanks or leading zeros. An IPv4-mapped
// address takes n 96..128 and gives the IPv4 CIDR /(n-96). A CIDR with host bits set
// ("10.1.2.3/8") is refused rather than widened: the operator may have meant the host. On failure
// returns nullopt and, when `error` is not null, a short lower-case phrase that reads after the
// field's name: "is not an IPv4 or IPv6 address or CIDR", "prefix length must be 0..32 for IPv4",
// "prefix length must be 0..128 for IPv6", "prefix length must not have leading zeros", "prefix
// length must be 96..128 for an IPv4-mapped address", "has host bits set; the network is
// 10.0.0.0/8".
std::optional<Cidr> parse_cidr(std::string_view text, std::string* error = nullptr);

// Canonical text: dotted quad for IPv4; RFC 5952 for IPv6 (lower case, no leading zeros, the
// longest run of two or more zero groups as "::", the first such run on a tie).
std::string to_string(const IpAddress& address);
// Always with the prefix length ("10.0.0.1/32"); parse_cidr() reads it back to the same Cidr.
std::string to_string(const Cidr& cidr);

namespace detail {

__extension__ typedef unsigned __int128 Uint128;

// BoundarySet<Key>: sorted, distinct boundaries and the radix index over them (see the top of
// this file). Key is std::uint32_t or Uint128. At most 2^32 - 1 boundaries.
template <class Key>
class BoundarySet {
 public:
  // `boundaries` sorted ascending, without duplicates.
  static BoundarySet build(std::vector<Key> boundaries);

  // Whether an odd number of boundaries are <= x.
  bool contains(Key x) const { return !boundaries_.empty() && (rank(x) & 1) != 0; }
  std::size_t memory_bytes() const;

 private:
  struct Node {
    Key low;  // every boundary under the node is in [low, high], a prefix's whole range
    Key high;
    std::uint32_t begin;  // boundaries_[begin, end) are under the node
    std::uint32_t end;
    std::uint32_t slots;  // slots_[slots, slots + buckets]: one per bucket, then the last's end
    std::uint32_t shift;  // the bucket of x is (x - low) >> shift
  };
  struct Slot {
    std::uint32_t begin;  // the bucket's first boundary; the next slot's begin ends the bucket
    std::uint32_t child;  // the bucket's own node, or 0 (the root is never a child): a leaf
  };

  // How many boundaries are <= x.
  std::size_t rank(Key x) const;
  std::uint32_t add_node(std::size_t begin, std::size_t end, int depth);

  std::vector<Key> boundaries_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  std::vector<Slot> slots_;
};

extern template class BoundarySet<std::uint32_t>;
extern template class BoundarySet<Uint128>;

}  // namespace detail

// IpSet: an immutable set of IPv4 and IPv6 CIDRs, built once per list snapshot and then read by
// any number of threads at once (nothing in it changes after build(), so no lock). contains() does
// not allocate; an empty set answers with one comparison.
class IpSet {
 public:
  IpSet() = default;  // empty

  // Overlapping, nested, adjacent and duplicate CIDRs are fine: their ranges merge. A CIDR with
  // host bits set counts as its network; a prefix outside its family's range is clamped to it.
  // O(n log n).
  static IpSet build(std::span<const Cidr> cidrs);

  bool contains(const IpAddress& address) const {
    if (size_ == 0) return false;  // no `ip` entry at all, the common case
    return lookup(address);
  }

  bool empty() const { return size_ == 0; }
  // How many CIDRs build() was given, before merging.
  std::size_t size() const { return size_; }
  // Heap and object bytes this set holds.
  std::size_t memory_bytes() const;

 private:
  bool lookup(const IpAddress& address) const;

  std::size_t size_ = 0;
  detail::BoundarySet<std::uint32_t> v4_;
  detail::BoundarySet<detail::Uint128> v6_;
};

}  // namespace floodgate::admin
