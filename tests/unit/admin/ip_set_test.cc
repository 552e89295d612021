// IP addresses, CIDRs and IpSet, the `ip` entries of the allow/block lists (issue 9): the text
// inet_pton reads (and a differential check against glibc's), RFC 5952 output, the CIDR edge cases
// the issue names (/0, /32, /128, mapped addresses, malformed prefixes, host bits), merging,
// range boundaries, and IpSet against a linear scan over thousands of random CIDRs.
#include "admin/ip_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace floodgate::admin {

// Failures print addresses as text.
void PrintTo(const IpAddress& address, std::ostream* os) { *os << to_string(address); }
void PrintTo(const Cidr& cidr, std::ostream* os) { *os << to_string(cidr); }

namespace {

constexpr std::uint64_t kAllOnes = ~std::uint64_t{0};

IpAddress ip(std::string_view text) {
  const std::optional<IpAddress> address = parse_ip(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(IpAddress{});
}

Cidr cidr(std::string_view text) {
  std::string error;
  const std::optional<Cidr> parsed = parse_cidr(text, &error);
  EXPECT_TRUE(parsed.has_value()) << text << ": " << error;
  return parsed.value_or(Cidr{});
}

std::string cidr_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_cidr(text, &error).has_value()) << text;
  return error;
}

IpSet set_of(std::initializer_list<std::string_view> texts) {
  std::vector<Cidr> cidrs;
  for (const std::string_view text : texts) cidrs.push_back(cidr(text));
  return IpSet::build(cidrs);
}

// What glibc reads in `text`, mapped addresses made IPv4 as parse_ip() makes them.
std::optional<IpAddress> inet_pton_reads(const std::string& text) {
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) {
    return IpAddress::ipv4((std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                           (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]});
  }
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) {
    return IpAddress::from_ipv6_bytes(bytes);
  }
  return std::nullopt;
}

// --- parse_ip ------------------------------------------------------------------------------------

TEST(ParseIp, ReadsDottedQuadIpv4InHostOrder) {
  EXPECT_EQ(ip("10.0.0.1"), IpAddress::ipv4(0x0a000001));
  EXPECT_EQ(ip("192.168.100.200"), IpAddress::ipv4(0xc0a864c8));
  EXPECT_EQ(ip("0.0.0.0"), IpAddress::ipv4(0));
  EXPECT_EQ(ip("255.255.255.255"), IpAddress::ipv4(0xffffffff));
  EXPECT_EQ(ip("10.0.0.1").family, IpFamily::kV4);
}

TEST(ParseIp, RefusesWhatInetPtonRefusesForIpv4) {
  const std::vector<std::vector<const char*>> refused = {
      {"", "1.2.3", "1.2.3.4.5", "1234", "16909060"},                    // not four octets
      {"1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4/", "1.2.3.4:80"},      // stray separators
      {"256.0.0.0", "1.2.3.256", "1.2.3.1000", "1.2.3.-1", "1.2.3.+1"},  // octets past 0..255
      {"01.2.3.4", "1.2.3.04", "1.2.3.00", "00.0.0.0"},                  // leading zeros
      {" 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1.2.3.4x", "0x1.2.3.4"},    // other characters
      {"a.b.c.d", "one.two.three.four", "[1.2.3.4]"},
  };
  for (const auto& group : refused) {
    for (const char* text : group) EXPECT_FALSE(parse_ip(text).has_value()) << '"' << text << '"';
  }
  // Nothing after the address, not even a NUL (the text is a string_view, not a C string).
  EXPECT_FALSE(parse_ip(std::string_view("1.2.3.4\0", 8)).has_value());
  EXPECT_FALSE(parse_ip(std::string_view("::1\0", 4)).has_value());
}

TEST(ParseIp, ReadsIpv6AsRfc4291WritesIt) {
  const IpAddress doc = IpAddress::ipv6(0x20010db800000000, 1);
  EXPECT_EQ(ip("2001:db8::1"), doc);
  EXPECT_EQ(ip("2001:DB8::1"), doc);
  EXPECT_EQ(ip("2001:db8:0:0:0:0:0:1"), doc);
  EXPECT_EQ(ip("2001:0db8:0000:0000:0000:0000:0000:0001"), doc);
  EXPECT_EQ(ip("2001:db8::0:1"), doc);
  EXPECT_EQ(doc.family, IpFamily::kV6);
  EXPECT_EQ(ip("::"), IpAddress::ipv6(0, 0));
  EXPECT_EQ(ip("::1"), IpAddress::ipv6(0, 1));
  EXPECT_EQ(ip("1::"), IpAddress::ipv6(0x0001000000000000, 0));
  EXPECT_EQ(ip("1:2:3:4:5:6:7:8"), IpAddress::ipv6(0x0001000200030004, 0x0005000600070008));
  EXPECT_EQ(ip("1:2:3:4:5:6:7::"), IpAddress::ipv6(0x0001000200030004, 0x0005000600070000));
  EXPECT_EQ(ip("::2:3:4:5:6:7:8"), IpAddress::ipv6(0x0000000200030004, 0x0005000600070008));
  EXPECT_EQ(ip("1:2:3:4:5:6::8"), IpAddress::ipv6(0x0001000200030004, 0x0005000600000008));
  EXPECT_EQ(ip("fe80::1:2"), IpAddress::ipv6(0xfe80000000000000, 0x0000000000010002));
  EXPECT_EQ(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), IpAddress::ipv6(kAllOnes, kAllOnes));
}

TEST(ParseIp, ReadsADottedQuadInPlaceOfTheLastTwoGroups) {
  EXPECT_EQ(ip("64:ff9b::1.2.3.4"), IpAddress::ipv6(0x0064ff9b00000000, 0x01020304));
  EXPECT_EQ(ip("1:2:3:4:5:6:1.2.3.4"), IpAddress::ipv6(0x0001000200030004, 0x0005000601020304));
  // IPv4-compatible (deprecated, RFC 4291 2.5.5.1) is not IPv4-mapped: it stays IPv6.
  EXPECT_EQ(ip("::1.2.3.4"), IpAddress::ipv6(0, 0x01020304));
  for (const char* text : {"::1.2.3", "::01.2.3.4", "::1.2.3.256", "1:2:3:4:5:6:7:1.2.3.4",
                           "::1.2.3.4:5", "::1.2.3.4.5", "1.2.3.4::", "::1.2.3.4::", "::.1.2.3",
                           "::ffff:1.2.3.4/", "::ffff:12345.1.2.3", "::ffff:1a.2.3.4"}) {
    EXPECT_FALSE(parse_ip(text).has_value()) << text;
  }
}

TEST(ParseIp, MakesIpv4MappedAddressesIpv4) {
  const IpAddress v4 = IpAddress::ipv4(0x01020304);
  EXPECT_EQ(ip("::ffff:1.2.3.4"), v4);
  EXPECT_EQ(ip("::FFFF:1.2.3.4"), v4);
  EXPECT_EQ(ip("::ffff:102:304"), v4);
  EXPECT_EQ(ip("0:0:0:0:0:ffff:1.2.3.4"), v4);
  EXPECT_EQ(ip("[::ffff:1.2.3.4]"), v4);
  EXPECT_EQ(IpAddress::ipv6(0, 0x0000ffff01020304), v4);
  const std::array<std::uint8_t, 16> bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
  EXPECT_EQ(IpAddress::from_ipv6_bytes(bytes), v4);
  // Only ::ffff:0:0/96: its neighbours stay IPv6.
  EXPECT_EQ(ip("::fffe:1.2.3.4").family, IpFamily::kV6);
  EXPECT_EQ(ip("::1:ffff:1.2.3.4").family, IpFamily::kV6);
  EXPECT_EQ(ip("64:ff9b::1.2.3.4").family, IpFamily::kV6);
}

TEST(ParseIp, TakesBracketsAroundIpv6Only) {
  EXPECT_EQ(ip("[::1]"), ip("::1"));
  EXPECT_EQ(ip("[2001:db8::1]"), ip("2001:db8::1"));
  for (const char* text :
       {"[1.2.3.4]", "[::1", "::1]", "[]", "[", "]", "[[::1]]", "[::1]:80", "[ ::1]", "[::1] "}) {
    EXPECT_FALSE(parse_ip(text).has_value()) << text;
  }
}

TEST(ParseIp, RefusesZoneIds) {
  for (const char* text : {"fe80::1%eth0", "fe80::1%1", "[fe80::1%eth0]", "fe80::1%"}) {
    EXPECT_FALSE(parse_ip(text).has_value()) << text;
  }
}

TEST(ParseIp, RefusesMalformedIpv6) {
  const std::vector<std::vector<const char*>> refused = {
      {":", ":1", "1:", ":1::", "1:2:3:4:5:6:7:8:"},                   // a lone colon
      {":::", "1:::2", "::1::", "1::2::3", "::1:2::"},                 // "::" twice
      {"1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9"},                          // not eight groups
      {"1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1::2:3:4:5:6:7:8"},  // "::" for no group
      {"12345::", "::12345", "g::", "::g"},                            // five digits, not hex
      {" ::1", "::1 ", "::-1", "::+1", "0x1::", "::1\t", "2001:db8::1/64", "garbage"},
  };
  for (const auto& group : refused) {
    for (const char* text : group) EXPECT_FALSE(parse_ip(text).has_value()) << '"' << text << '"';
  }
}

// parse_ip() is our own code; glibc's inet_pton is the reference it must agree with, on random
// strings over the characters that matter and on small edits of valid addresses.
TEST(ParseIp, AgreesWithInetPton) {
  const std::string alphabet = "0123456789abcdefABCDEF::::....%x /-";
  std::vector<std::string> valid;
  for (const char* line :
       {"1.2.3.4 0.0.0.0 255.255.255.255 :: ::1 1:: 2001:db8::1 1:2:3:4:5:6:7:8 ::ffff:1.2.3.4",
        "64:ff9b::1.2.3.4 1:2:3:4:5:6:1.2.3.4 fe80::a:b:c:d ::1.2.3.4 1:2:3:4:5:6::8"}) {
    std::istringstream words(line);
    for (std::string word; words >> word;) valid.push_back(word);
  }
  std::mt19937_64 rng(20240609);
  const auto below = [&rng](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  int accepted = 0;
  for (int round = 0; round < 200'000; ++round) {
    std::string text;
    if (round % 2 == 0) {
      const std::size_t length = below(24);
      for (std::size_t i = 0; i < length; ++i) text += alphabet[below(alphabet.size())];
    } else {
      text = valid[below(valid.size())];
      for (std::size_t edits = 1 + below(3); edits > 0; --edits) {
        const char c = alphabet[below(alphabet.size())];
        const std::size_t at = below(text.size() + 1);
        switch (below(3)) {
          case 0:
            text.insert(at, 1, c);
            break;
          case 1:
            if (at < text.size()) text.erase(at, 1);
            break;
          default:
            if (at < text.size()) text[at] = c;
            break;
        }
      }
    }
    const std::optional<IpAddress> ours = parse_ip(text);
    ASSERT_EQ(ours, inet_pton_reads(text)) << '"' << text << '"';
    if (ours) {
      ++accepted;
      ASSERT_EQ(parse_ip(to_string(*ours)), ours) << text;
    }
  }
  EXPECT_GT(accepted, 10'000);  // the edits left enough valid addresses to compare
}

// --- to_string -----------------------------------------------------------------------------------

TEST(ToString, WritesIpv4AsADottedQuad) {
  EXPECT_EQ(to_string(IpAddress::ipv4(0x0a000001)), "10.0.0.1");
  EXPECT_EQ(to_string(IpAddress::ipv4(0)), "0.0.0.0");
  EXPECT_EQ(to_string(IpAddress::ipv4(0xffffffff)), "255.255.255.255");
  EXPECT_EQ(to_string(ip("::ffff:192.0.2.1")), "192.0.2.1");
}

TEST(ToString, WritesIpv6AsRfc5952Says) {
  EXPECT_EQ(to_string(ip("2001:0DB8:0000:0000:0000:0000:0000:0001")), "2001:db8::1");
  EXPECT_EQ(to_string(ip("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");     // the first of a tie
  EXPECT_EQ(to_string(ip("2001:0:0:1:0:0:0:1")), "2001:0:0:1::1");           // the longest run
  EXPECT_EQ(to_string(ip("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");  // one zero: "0"
  EXPECT_EQ(to_string(ip("0:2:3:4:5:6:7:8")), "0:2:3:4:5:6:7:8");
  EXPECT_EQ(to_string(ip("1:2:3:4:5:6:7:0")), "1:2:3:4:5:6:7:0");
  EXPECT_EQ(to_string(ip("::")), "::");
  EXPECT_EQ(to_string(ip("::1")), "::1");
  EXPECT_EQ(to_string(ip("1::")), "1::");
  EXPECT_EQ(to_string(ip("FE80::ABCD")), "fe80::abcd");
  EXPECT_EQ(to_string(ip("::1.2.3.4")), "::102:304");
  EXPECT_EQ(to_string(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

// glibc's inet_ntop compresses as RFC 5952 does; it writes ::/64 addresses differently (as
// IPv4-compatible dotted quads), so those stay out of the comparison.
TEST(ToString, AgreesWithInetNtop) {
  std::mt19937_64 rng(5952);
  for (int round = 0; round < 100'000; ++round) {
    std::array<std::uint8_t, 16> bytes{};
    for (std::size_t group = 0; group < 8; ++group) {
      const std::uint64_t r = rng();
      // Mostly zero groups, to make runs of every length.
      std::uint64_t value = 0;
      if (r % 3 == 0) {
        value = (r >> 8) & 0xffff;
      } else if (r % 7 == 0) {
        value = 1;
      }
      bytes[2 * group] = static_cast<std::uint8_t>(value >> 8);
      bytes[2 * group + 1] = static_cast<std::uint8_t>(value);
    }
    const IpAddress address = IpAddress::from_ipv6_bytes(bytes);
    if (address.family != IpFamily::kV6 || address.v6_high == 0) continue;
    char text[INET6_ADDRSTRLEN];
    ASSERT_NE(inet_ntop(AF_INET6, bytes.data(), text, sizeof text), nullptr);
    ASSERT_EQ(to_string(address), text);
    ASSERT_EQ(parse_ip(text), address);
  }
}

// --- parse_cidr ----------------------------------------------------------------------------------

TEST(ParseCidr, ReadsNetworksAndBareAddresses) {
  EXPECT_EQ(cidr("10.0.0.0/8"), (Cidr{IpAddress::ipv4(0x0a000000), 8}));
  EXPECT_EQ(cidr("10.0.0.1"), (Cidr{IpAddress::ipv4(0x0a000001), 32}));
  EXPECT_EQ(cidr("10.0.0.1/32"), cidr("10.0.0.1"));
  EXPECT_EQ(cidr("0.0.0.0/0"), (Cidr{IpAddress::ipv4(0), 0}));
  EXPECT_EQ(cidr("2001:db8::/32"), (Cidr{IpAddress::ipv6(0x20010db800000000, 0), 32}));
  EXPECT_EQ(cidr("2001:db8::1"), (Cidr{IpAddress::ipv6(0x20010db800000000, 1), 128}));
  EXPECT_EQ(cidr("2001:db8::1/128"), cidr("2001:db8::1"));
  EXPECT_EQ(cidr("::/0"), (Cidr{IpAddress::ipv6(0, 0), 0}));
  EXPECT_EQ(cidr("[2001:db8::]/32"), cidr("2001:db8::/32"));
}

TEST(ParseCidr, MakesIpv4MappedNetworksIpv4) {
  EXPECT_EQ(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
  EXPECT_EQ(cidr("::ffff:1.2.3.4"), cidr("1.2.3.4/32"));
  EXPECT_EQ(cidr("::ffff:1.2.3.4/128"), cidr("1.2.3.4/32"));
  EXPECT_EQ(cidr("::ffff:0:0/96"), cidr("0.0.0.0/0"));
  EXPECT_EQ(cidr_error("::ffff:10.0.0.0/95"),
            "prefix length must be 96..128 for an IPv4-mapped address");
  EXPECT_EQ(cidr_error("::ffff:0:0/64"),
            "prefix length must be 96..128 for an IPv4-mapped address");
  EXPECT_EQ(cidr_error("::ffff:1.2.3.4/129"), "prefix length must be 0..128 for IPv6");
}

TEST(ParseCidr, RefusesWhatIsNoAddress) {
  for (const char* text : {"", "/", "/8", "garbage", "10.0.0.0 /8", " 10.0.0.0/8", "10.0.0/8",
                           "fe80::1%eth0/64", "[10.0.0.0]/8", "[::1/128]", "01.0.0.0/8"}) {
    EXPECT_EQ(cidr_error(text), "is not an IPv4 or IPv6 address or CIDR") << text;
  }
  EXPECT_FALSE(parse_cidr("garbage").has_value());  // no error wanted: none written
}

TEST(ParseCidr, RefusesMalformedPrefixLengths) {
  for (const char* text :
       {"10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/8 ", "10.0.0.0/+8",
        "10.0.0.0/8/8", "10.0.0.0/x", "10.0.0.0/1000", "10.0.0.0/4294967304", "10.0.0.0/0x8"}) {
    EXPECT_EQ(cidr_error(text), "prefix length must be 0..32 for IPv4") << text;
  }
  for (const char* text : {"::/", "::/129", "::/-0", "::/256", "2001:db8::/32/", "::/1e2"}) {
    EXPECT_EQ(cidr_error(text), "prefix length must be 0..128 for IPv6") << text;
  }
  for (const char* text : {"10.0.0.0/08", "10.0.0.0/00", "10.0.0.0/000", "::/064", "::/00"}) {
    EXPECT_EQ(cidr_error(text), "prefix length must not have leading zeros") << text;
  }
}

TEST(ParseCidr, RefusesHostBitsNamingTheNetwork) {
  EXPECT_EQ(cidr_error("10.1.2.3/8"), "has host bits set; the network is 10.0.0.0/8");
  EXPECT_EQ(cidr_error("1.2.3.4/0"), "has host bits set; the network is 0.0.0.0/0");
  EXPECT_EQ(cidr_error("192.0.2.1/31"), "has host bits set; the network is 192.0.2.0/31");
  EXPECT_EQ(cidr_error("2001:db8::1/32"), "has host bits set; the network is 2001:db8::/32");
  EXPECT_EQ(cidr_error("::1/0"), "has host bits set; the network is ::/0");
  EXPECT_EQ(cidr_error("2001:db8:0:0:8000::/64"),
            "has host bits set; the network is 2001:db8::/64");
  EXPECT_EQ(cidr_error("::ffff:10.1.2.3/104"), "has host bits set; the network is 10.0.0.0/8");
}

TEST(ParseCidr, ToStringIsCanonicalAndReadsBack) {
  const std::pair<const char*, const char*> cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"1.2.3.4", "1.2.3.4/32"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"2001:DB8:0::/32", "2001:db8::/32"},
      {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128"},
      {"::", "::/128"},
      {"::/0", "::/0"},
      {"fe80:0:0:0:0:0:0:0/10", "fe80::/10"},
      {"::ffff:10.0.0.0/104", "10.0.0.0/8"},
      {"[2001:db8::]/48", "2001:db8::/48"},
  };
  for (const auto& [text, canonical] : cases) {
    const Cidr parsed = cidr(text);
    EXPECT_EQ(to_string(parsed), canonical) << text;
    EXPECT_EQ(cidr(to_string(parsed)), parsed) << text;
  }
}

// --- IpSet ---------------------------------------------------------------------------------------

TEST(IpSet, EmptyContainsNothing) {
  for (const IpSet& set : {IpSet{}, IpSet::build({})}) {
    EXPECT_TRUE(set.empty());
    EXPECT_EQ(set.size(), 0u);
    EXPECT_FALSE(set.contains(ip("0.0.0.0")));
    EXPECT_FALSE(set.contains(ip("10.0.0.1")));
    EXPECT_FALSE(set.contains(ip("::")));
    EXPECT_FALSE(set.contains(ip("2001:db8::1")));
    EXPECT_GE(set.memory_bytes(), sizeof(IpSet));
  }
}

TEST(IpSet, ZeroPrefixMatchesItsWholeFamilyAndNothingOfTheOther) {
  const IpSet v4 = set_of({"0.0.0.0/0"});
  EXPECT_FALSE(v4.empty());
  EXPECT_EQ(v4.size(), 1u);
  for (const char* inside : {"0.0.0.0", "10.1.2.3", "255.255.255.255", "::ffff:1.2.3.4"}) {
    EXPECT_TRUE(v4.contains(ip(inside))) << inside;
  }
  for (const char* outside : {"::", "::1", "::1.2.3.4", "2001:db8::1", "ffff::"}) {
    EXPECT_FALSE(v4.contains(ip(outside))) << outside;
  }

  const IpSet v6 = set_of({"::/0"});
  for (const char* inside :
       {"::", "::1", "::1.2.3.4", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
    EXPECT_TRUE(v6.contains(ip(inside))) << inside;
  }
  // A mapped address is IPv4, so ::/0 does not match it.
  for (const char* outside : {"0.0.0.0", "10.1.2.3", "255.255.255.255", "::ffff:1.2.3.4"}) {
    EXPECT_FALSE(v6.contains(ip(outside))) << outside;
  }
}

TEST(IpSet, HostEntriesMatchOneAddress) {
  const IpSet set = set_of({"10.0.0.1", "192.0.2.7/32", "2001:db8::1", "2001:db8::7/128"});
  EXPECT_TRUE(set.contains(ip("10.0.0.1")));
  EXPECT_FALSE(set.contains(ip("10.0.0.0")));
  EXPECT_FALSE(set.contains(ip("10.0.0.2")));
  EXPECT_TRUE(set.contains(ip("192.0.2.7")));
  EXPECT_FALSE(set.contains(ip("192.0.2.6")));
  EXPECT_FALSE(set.contains(ip("192.0.2.8")));
  EXPECT_TRUE(set.contains(ip("2001:db8::1")));
  EXPECT_FALSE(set.contains(ip("2001:db8::")));
  EXPECT_FALSE(set.contains(ip("2001:db8::2")));
  EXPECT_TRUE(set.contains(ip("2001:db8::7")));
  EXPECT_FALSE(set.contains(ip("2001:db8::6")));
  EXPECT_FALSE(set.contains(ip("2001:db8::8")));
  EXPECT_FALSE(set.contains(ip("2001:db8:0:1::1")));  // same low bits, another /64
}

TEST(IpSet, FirstAndLastAddressesOfEachFamily) {
  const IpSet set =
      set_of({"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"});
  EXPECT_TRUE(set.contains(ip("0.0.0.0")));
  EXPECT_FALSE(set.contains(ip("0.0.0.1")));
  EXPECT_TRUE(set.contains(ip("255.255.255.255")));
  EXPECT_FALSE(set.contains(ip("255.255.255.254")));
  EXPECT_TRUE(set.contains(ip("::")));
  EXPECT_FALSE(set.contains(ip("::1")));
  EXPECT_TRUE(set.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(set.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")));

  const IpSet top = set_of({"255.255.255.0/24", "255.255.255.255", "ffff::/16"});
  EXPECT_FALSE(top.contains(ip("255.255.254.255")));
  EXPECT_TRUE(top.contains(ip("255.255.255.0")));
  EXPECT_TRUE(top.contains(ip("255.255.255.255")));
  EXPECT_FALSE(top.contains(ip("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(top.contains(ip("ffff::")));
  EXPECT_TRUE(top.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
}

TEST(IpSet, RangesIncludeTheirFirstAndLastAddressOnly) {
  const IpSet set = set_of({"192.0.2.0/24", "2001:db8:1::/48", "::ffff:198.51.100.0/120"});
  EXPECT_FALSE(set.contains(ip("192.0.1.255")));
  EXPECT_TRUE(set.contains(ip("192.0.2.0")));
  EXPECT_TRUE(set.contains(ip("192.0.2.255")));
  EXPECT_FALSE(set.contains(ip("192.0.3.0")));
  EXPECT_FALSE(set.contains(ip("2001:db8:0:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(set.contains(ip("2001:db8:1::")));
  EXPECT_TRUE(set.contains(ip("2001:db8:1:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(set.contains(ip("2001:db8:2::")));
  EXPECT_FALSE(set.contains(ip("198.51.99.255")));
  EXPECT_TRUE(set.contains(ip("198.51.100.0")));
  EXPECT_TRUE(set.contains(ip("::ffff:198.51.100.255")));
  EXPECT_FALSE(set.contains(ip("::ffff:198.51.101.0")));
}

TEST(IpSet, MappedAddressesMatchIpv4EntriesBothWays) {
  const IpSet v4_entry = set_of({"10.0.0.0/8"});
  EXPECT_TRUE(v4_entry.contains(ip("::ffff:10.1.2.3")));
  EXPECT_TRUE(v4_entry.contains(ip("[::ffff:10.1.2.3]")));
  EXPECT_TRUE(v4_entry.contains(ip("::ffff:a01:203")));
  const std::array<std::uint8_t, 16> bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 8, 7};
  EXPECT_TRUE(v4_entry.contains(IpAddress::from_ipv6_bytes(bytes)));
  EXPECT_FALSE(v4_entry.contains(ip("::10.1.2.3")));  // IPv4-compatible is another address
  EXPECT_FALSE(v4_entry.contains(ip("64:ff9b::10.1.2.3")));

  const IpSet mapped_entry = set_of({"::ffff:192.0.2.0/120"});
  EXPECT_TRUE(mapped_entry.contains(ip("192.0.2.55")));
  EXPECT_TRUE(mapped_entry.contains(ip("::ffff:192.0.2.55")));
  EXPECT_FALSE(mapped_entry.contains(ip("192.0.3.0")));
}

TEST(IpSet, MergesOverlappingNestedAdjacentAndDuplicateCidrs) {
  const IpSet set = set_of({
      "10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "10.255.255.255",  // nested, duplicate
      "11.0.0.0/8",                                                 // adjacent to 10/8
      "12.128.0.0/9", "12.0.0.0/9", "12.64.0.0/10",                 // two halves make 12/8
      "20.0.0.5", "20.0.0.4/31", "20.0.0.6",                        // overlapping, adjacent
      "2001:db8:8000::/33", "2001:db8::/33", "2001:db8:0:1::/64",   // make 2001:db8::/32
      "2001:db9::1", "2001:db9::/127", "2001:db9::3",               // ::0-1 and ::3, not ::2
  });
  EXPECT_EQ(set.size(), 17u);
  EXPECT_FALSE(set.contains(ip("9.255.255.255")));
  for (const char* inside : {"10.0.0.0", "10.1.2.3", "10.255.255.255", "11.0.0.0", "11.255.255.255",
                             "12.0.0.0", "12.127.255.255", "12.128.0.0", "12.255.255.255"}) {
    EXPECT_TRUE(set.contains(ip(inside))) << inside;
  }
  EXPECT_FALSE(set.contains(ip("13.0.0.0")));
  EXPECT_FALSE(set.contains(ip("20.0.0.3")));
  EXPECT_TRUE(set.contains(ip("20.0.0.4")));
  EXPECT_TRUE(set.contains(ip("20.0.0.5")));
  EXPECT_TRUE(set.contains(ip("20.0.0.6")));
  EXPECT_FALSE(set.contains(ip("20.0.0.7")));

  EXPECT_FALSE(set.contains(ip("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(set.contains(ip("2001:db8::")));
  EXPECT_TRUE(set.contains(ip("2001:db8:7fff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(set.contains(ip("2001:db8:8000::")));
  EXPECT_TRUE(set.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(set.contains(ip("2001:db9::")));
  EXPECT_TRUE(set.contains(ip("2001:db9::1")));
  EXPECT_FALSE(set.contains(ip("2001:db9::2")));
  EXPECT_TRUE(set.contains(ip("2001:db9::3")));
  EXPECT_FALSE(set.contains(ip("2001:db9::4")));
}

TEST(IpSet, BuildTakesTheNetworkOfACidrWithHostBits) {
  // parse_cidr() refuses such text; a Cidr made by hand counts as its network.
  const std::vector<Cidr> cidrs = {Cidr{ip("10.1.2.3"), 8}, Cidr{ip("2001:db8::1"), 32}};
  const IpSet set = IpSet::build(cidrs);
  EXPECT_TRUE(set.contains(ip("10.200.0.0")));
  EXPECT_FALSE(set.contains(ip("11.0.0.0")));
  EXPECT_TRUE(set.contains(ip("2001:db8:ffff::")));
  EXPECT_FALSE(set.contains(ip("2001:db9::")));
}

// --- IpSet against a linear scan -----------------------------------------------------------------

bool naive_contains(const std::vector<Cidr>& cidrs, const IpAddress& address) {
  const auto top = [](std::uint64_t value, int bits) {
    return bits == 0 ? std::uint64_t{0} : value >> (64 - bits);
  };
  for (const Cidr& c : cidrs) {
    if (c.address.family != address.family) continue;
    if (address.family == IpFamily::kV4) {
      const std::uint64_t a = address.v4;
      const std::uint64_t n = c.address.v4;
      if (top(a << 32, c.prefix) == top(n << 32, c.prefix)) return true;
    } else {
      const int high_bits = std::min(c.prefix, 64);
      const int low_bits = c.prefix - high_bits;
      if (top(address.v6_high, high_bits) == top(c.address.v6_high, high_bits) &&
          top(address.v6_low, low_bits) == top(c.address.v6_low, low_bits)) {
        return true;
      }
    }
  }
  return false;
}

// Random CIDRs of one family, clustered (so that they overlap, nest and touch) or spread, with
// prefix lengths a list really has; and addresses around them: inside, just below, just after.
class RandomLists {
 public:
  explicit RandomLists(std::uint64_t seed) : rng_(seed) {}

  Cidr v4(bool clustered) {
    const std::uint32_t base = clustered ? v4_bases_[below(v4_bases_.size())] : random32();
    const std::uint32_t address = clustered ? base ^ (random32() & 0xfffff) : base;
    // No /0 or /1 here (the tests above have them): a few would cover everything.
    const int prefixes[] = {32, 32, 32, 24, 24, 31, 30, 28, 20, 16, 12};
    int prefix = prefixes[below(std::size(prefixes))];
    if (below(10) == 0) prefix = 8 + static_cast<int>(below(25));
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return {IpAddress::ipv4(address & mask), prefix};
  }

  Cidr v6(bool clustered) {
    std::uint64_t high = rng_();
    std::uint64_t low = rng_();
    if (clustered) {
      // A few /32 allocations, and inside one of them a few /64s crowded with hosts.
      const std::size_t allocation = below(v6_allocations_.size());
      high = (v6_allocations_[allocation] << 32) | (high & 0xffffffff);
      if (below(3) == 0) high = (v6_allocations_[allocation] << 32) | below(4);
      if (below(4) == 0) low &= 0xff;
    }
    if (high == 0) high = 1;  // keep clear of ::ffff:0:0/96, which is IPv4
    const int prefixes[] = {128, 128, 128, 64, 64, 127, 120, 112, 96, 56, 48, 40, 32, 24};
    int prefix = prefixes[below(std::size(prefixes))];
    if (below(10) == 0) prefix = 16 + static_cast<int>(below(113));
    const int high_bits = std::min(prefix, 64);
    const int low_bits = prefix - high_bits;
    const auto mask = [](int bits) {
      return bits == 0 ? std::uint64_t{0} : ~std::uint64_t{0} << (64 - bits);
    };
    return {IpAddress::ipv6(high & mask(high_bits), low & mask(low_bits)), prefix};
  }

  // Addresses to ask about: random ones of both families, and each CIDR's first and last address
  // with their neighbours below and above.
  std::vector<IpAddress> probes(const std::vector<Cidr>& cidrs, std::size_t random_count) {
    std::vector<IpAddress> out;
    for (std::size_t i = 0; i < random_count; ++i) {
      out.push_back(i % 2 == 0 ? IpAddress::ipv4(random32()) : IpAddress::ipv6(rng_(), rng_()));
      out.push_back(v4(true).address);
      out.push_back(v6(true).address);
    }
    for (const Cidr& c : cidrs) {
      if (c.address.family == IpFamily::kV4) {
        const std::uint32_t first = c.address.v4;
        const std::uint32_t last =
            first | (c.prefix == 0 ? ~std::uint32_t{0} : ~(~std::uint32_t{0} << (32 - c.prefix)));
        for (const std::uint32_t a : {first - 1, first, last, last + 1}) {
          out.push_back(IpAddress::ipv4(a));
        }
      } else {
        const auto u = [](std::uint64_t high, std::uint64_t low) {
          return (static_cast<detail::Uint128>(high) << 64) | low;
        };
        const detail::Uint128 first = u(c.address.v6_high, c.address.v6_low);
        const detail::Uint128 host =
            c.prefix == 0 ? ~detail::Uint128{0} : ~(~detail::Uint128{0} << (128 - c.prefix));
        const detail::Uint128 last = first | host;
        for (const detail::Uint128 a : {first - 1, first, last, last + 1}) {
          out.push_back(
              IpAddress::ipv6(static_cast<std::uint64_t>(a >> 64), static_cast<std::uint64_t>(a)));
        }
      }
    }
    return out;
  }

 private:
  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  std::uint32_t random32() { return static_cast<std::uint32_t>(rng_() >> 32); }

  std::mt19937_64 rng_;
  std::array<std::uint32_t, 4> v4_bases_{0x0a000000, 0xc0a80000, 0x5db8d800, 0xfffff000};
  std::array<std::uint64_t, 3> v6_allocations_{0x20010db8, 0x2a001450, 0x26001f18};
};

TEST(IpSet, AgreesWithALinearScan) {
  RandomLists random(0x1e55ed);
  for (const std::size_t count : {1u, 2u, 5u, 40u, 300u, 3000u}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<Cidr> cidrs;
      for (std::size_t i = 0; i < count; ++i) {
        const bool clustered = variant != 0;
        const bool v4 = variant == 3 ? true : variant == 2 ? false : i % 2 == 0;
        cidrs.push_back(v4 ? random.v4(clustered) : random.v6(clustered));
      }
      const IpSet set = IpSet::build(cidrs);
      EXPECT_EQ(set.size(), count);
      for (const IpAddress& address : random.probes(cidrs, 2000)) {
        ASSERT_EQ(set.contains(address), naive_contains(cidrs, address))
            << to_string(address) << " among " << count << " CIDRs, variant " << variant;
      }
    }
  }
}

// Boundaries crowded towards zero: each level of the index finds almost all of them in its first
// bucket, until the depth limit makes a large leaf. Hosts at every power of two, and their
// neighbours.
TEST(IpSet, AgreesWithALinearScanWhenTheIndexRunsOutOfDepth) {
  std::vector<Cidr> cidrs;
  std::vector<IpAddress> probes;
  for (int bit = 0; bit < 32; ++bit) {
    const std::uint32_t a = std::uint32_t{1} << bit;
    cidrs.push_back({IpAddress::ipv4(a), 32});
    for (const std::uint32_t p : {a - 1, a, a + 1, a + 2}) probes.push_back(IpAddress::ipv4(p));
  }
  for (int bit = 0; bit < 128; ++bit) {
    const detail::Uint128 a = detail::Uint128{1} << bit;
    cidrs.push_back(
        {IpAddress::ipv6(static_cast<std::uint64_t>(a >> 64), static_cast<std::uint64_t>(a)), 128});
    for (const detail::Uint128 p : {a - 1, a, a + 1, a + 2}) {
      probes.push_back(
          IpAddress::ipv6(static_cast<std::uint64_t>(p >> 64), static_cast<std::uint64_t>(p)));
    }
  }
  const IpSet set = IpSet::build(cidrs);
  for (const IpAddress& address : probes) {
    ASSERT_EQ(set.contains(address), naive_contains(cidrs, address)) << to_string(address);
  }
}

TEST(IpSet, ReportsItsMemory) {
  // 5,000 hosts of each family, none adjacent: two boundaries each.
  std::vector<Cidr> cidrs;
  for (std::uint32_t i = 0; i < 5'000; ++i) {
    cidrs.push_back({IpAddress::ipv4(0x0a000000 + 16 * i), 32});
    cidrs.push_back({IpAddress::ipv6(0x20010db800000000, 16 * i), 128});
  }
  const IpSet set = IpSet::build(cidrs);
  EXPECT_EQ(set.size(), 10'000u);
  // At least the boundaries (4 bytes IPv4, 16 IPv6), and well under 1 KiB a CIDR.
  EXPECT_GE(set.memory_bytes(), 10'000u * 4 + 10'000u * 16);
  EXPECT_LT(set.memory_bytes(), 10'000u * 1024);
}

}  // namespace
}  // namespace floodgate::admin
