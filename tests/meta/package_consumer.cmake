# meta.package_consumer: proves that an installed vmrt is usable by an unrelated project.
#
#   1. install the build tree into a staging prefix;
#   2. move the prefix elsewhere, because an installed package must be relocatable;
#   3. check that no installed CMake file mentions vmrt's source or build tree;
#   4. configure, build and run tests/meta/consumer against the moved prefix.
#
# Everything happens in a fresh directory under WORK_ROOT that is removed at the end, also when a
# step fails: steps record the first failure instead of aborting, and the script fails only after
# cleaning up. Each step has its own timeout, all of them together shorter than the CTest TIMEOUT.
cmake_minimum_required(VERSION 3.25)

foreach(var VMRT_BUILD_DIR VMRT_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_ROOT GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "package_consumer.cmake needs -D${var}=...")
  endif()
endforeach()

string(RANDOM LENGTH 10 ALPHABET 0123456789abcdef run_id)
set(work "${WORK_ROOT}/package-consumer-${run_id}")
set(staging "${work}/staging")
set(prefix "${work}/prefix")
set(consumer_build "${work}/consumer-build")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

set(failure "")

# Runs one command unless an earlier step failed; on failure records its output in `failure`.
function(step description timeout)
  if(NOT failure STREQUAL "")
    return()
  endif()
  message(STATUS "${description}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output TIMEOUT ${timeout})
  if(NOT rc EQUAL 0)
    set(failure "${description} failed (${rc}):\n${output}" PARENT_SCOPE)
  else()
    message("${output}")
  endif()
endfunction()

# An installed CMake file that names the source or build tree would break as soon as either is
# gone; the prefix itself is inside the build tree here, but it was moved, so any absolute path
# to it is stale too.
function(check_no_tree_paths)
  if(NOT failure STREQUAL "")
    return()
  endif()
  file(GLOB_RECURSE package_files "${prefix}/*.cmake")
  if(NOT package_files)
    set(failure "the install produced no CMake package files" PARENT_SCOPE)
    return()
  endif()
  foreach(package_file IN LISTS package_files)
    file(READ "${package_file}" contents)
    foreach(tree IN ITEMS "${VMRT_BUILD_DIR}" "${VMRT_SOURCE_DIR}")
      string(FIND "${contents}" "${tree}" at)
      if(NOT at EQUAL -1)
        set(failure "${package_file} refers to ${tree}" PARENT_SCOPE)
        return()
      endif()
    endforeach()
  endforeach()
endfunction()

set(config_args "")
if(NOT "${CONFIG}" STREQUAL "")
  set(config_args --config "${CONFIG}")
endif()

step("install vmrt into ${staging}" 120
  "${CMAKE_COMMAND}" --install "${VMRT_BUILD_DIR}" --prefix "${staging}" ${config_args})
if(failure STREQUAL "")
  file(RENAME "${staging}" "${prefix}")
endif()
check_no_tree_paths()
step("configure the consumer" 300
  "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}"
  "-DCMAKE_BUILD_TYPE=${CONFIG}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  "-DEXPECTED_PREFIX=${prefix}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
step("build the consumer" 600 "${CMAKE_COMMAND}" --build "${consumer_build}" ${config_args})
if(failure STREQUAL "")
  file(GLOB_RECURSE consumer_exe LIST_DIRECTORIES false "${consumer_build}/vmrt_consumer")
  if(NOT consumer_exe)
    set(failure "the consumer build produced no vmrt_consumer executable")
  endif()
endif()
step("run the consumer" 60 ${consumer_exe})

file(REMOVE_RECURSE "${work}")
if(NOT failure STREQUAL "")
  message(FATAL_ERROR "${failure}")
endif()
message(STATUS "the installed vmrt package works")
