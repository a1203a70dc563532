// pause, resume, cancel: campaign state changes that every engine notices within
// engine.registry_interval_ms.
#pragma once

#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

enum class control_action { pause, resume, cancel };

// Returns the exit code; prints what changed (or why nothing did).
int control_command(const config& cfg, const std::string& campaign, control_action action);

}  // namespace budstikke::cli
