// Bytes as lowercase hex text and back: MAC addresses, machine identifiers, saved VM identities.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmrt::detail {

/// The value of one hex digit (either case), or -1.
int hex_digit_value(char c) noexcept;

/// Two lowercase hex digits per byte.
std::string hex_string(std::span<const std::uint8_t> bytes);

/// The bytes of `text`, two hex digits (either case) per byte; nothing for an odd length or a
/// character that is not a hex digit. Empty text gives no bytes.
std::optional<std::vector<std::uint8_t>> parse_hex_bytes(std::string_view text);

}  // namespace vmrt::detail
