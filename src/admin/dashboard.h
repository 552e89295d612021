// File: admin/dashboard.h
//
// The live dashboard the admin port serves at GET / (admin/dashboard/index.html, embedded at build
// time by admin/dashboard/embed.cmake).
#pragma once

#include <string_view>

namespace floodgate::admin {

std::string_view dashboard_html();

}  // namespace floodgate::admin
