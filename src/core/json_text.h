// File: core/json_text.h
//
// append_json_string(): `s` as a JSON string literal (quotes included) appended to `out`, with
// quote, backslash and control characters escaped. For the few places that write JSON by hand
// (the HTTP responses, `floodgate validate`'s listing); bytes >= 0x80 pass through unchanged.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace floodgate::core {

inline void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace floodgate::core
