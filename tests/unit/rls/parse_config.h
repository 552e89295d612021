// parse_config(): an envoyproxy/ratelimit config from YAML text, for the RLS tests; a refused text
// fails the test and gives an empty config.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include <gtest/gtest.h>

#include "rls/config.h"

namespace floodgate::rls {

inline std::shared_ptr<const Config> parse_config(const std::string& text) {
  auto loaded = load_config_text(text, "test.yaml");
  if (auto* e = std::get_if<LoadErrors>(&loaded)) {
    ADD_FAILURE() << e->messages.front();
    return std::make_shared<Config>();
  }
  return std::make_shared<const Config>(std::get<Config>(std::move(loaded)));
}

}  // namespace floodgate::rls
