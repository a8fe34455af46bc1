# Runs capability_check on a fixture that holds exactly one violation. Passes only if the checker
# exits with 1, prints the expected violation, and reports nothing else, so a fixture cannot pass
# by failing for an unrelated reason.
#
# -DCHECKER=<capability_check> -DDOC=<fixture.md> -DTIER_EXE=<test module> -DEXPECTED=<plain text>
foreach(var CHECKER DOC TIER_EXE EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_violation.cmake needs -D${var}=...")
  endif()
endforeach()

execute_process(
  COMMAND ${CHECKER} --doc ${DOC} --tier unit=${TIER_EXE} --tier component=${TIER_EXE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output TIMEOUT 50)
message("${output}")

string(FIND "${output}" "${EXPECTED}" found)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "expected exit status 1, got ${rc}")
elseif(found EQUAL -1)
  message(FATAL_ERROR "expected the violation text: ${EXPECTED}")
elseif(NOT output MATCHES "capability check: 1 violation")
  message(FATAL_ERROR "expected exactly one violation")
endif()
