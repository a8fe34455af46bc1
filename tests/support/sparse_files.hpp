// Sparse files with known contents, for the disk tests and bench/clone: data written at chosen
// ranges (a deterministic pattern per range), holes everywhere else.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmrt::test {

struct byte_range {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

/// `count` ranges of `length` bytes spread evenly over [0, size) at 64 KiB-aligned offsets (the
/// last one ends well before size, so the file also has a trailing hole).
std::vector<byte_range> spread_ranges(std::uint64_t size, std::uint64_t count, std::uint64_t length);

/// Creates `file` of `size` bytes (mode `mode`): a hole except for `ranges`, which hold
/// pattern_byte(offset, seed) at each offset.
void make_sparse_file(const std::filesystem::path& file, std::uint64_t size,
                      const std::vector<byte_range>& ranges, unsigned seed = 1, unsigned mode = 0640);

/// The byte that make_sparse_file writes at `offset`.
unsigned char pattern_byte(std::uint64_t offset, unsigned seed);

/// Overwrites [offset, offset + length) of an existing file with `value`, fsynced.
void fill_range(const std::filesystem::path& file, std::uint64_t offset, std::uint64_t length,
                unsigned char value);

/// Offset of the first byte where the two files differ (a size difference counts); nullopt if equal.
std::optional<std::uint64_t> first_difference(const std::filesystem::path& a, const std::filesystem::path& b);

/// st_blocks * 512.
std::uint64_t allocated_bytes(const std::filesystem::path& file);

/// Names in `dir`, sorted.
std::vector<std::string> dir_entries(const std::filesystem::path& dir);

}  // namespace vmrt::test
