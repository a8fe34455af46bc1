// Precompiled header of the test executables: the heavy, stable includes.
#pragma once
#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>
