# The C API (include/sealwal/sealwal.h) driven from C99: one binary against
# libsealwal.a (with the sanitizers in their suite), one against libsealwal.so.
foreach(variant static shared)
  add_executable(c_api_test_${variant} c_api_test.c)
  set_target_properties(c_api_test_${variant} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON
    C_EXTENSIONS OFF)
  target_compile_options(c_api_test_${variant} PRIVATE -Wall -Wextra -pedantic
    -D_POSIX_C_SOURCE=200809L)
  add_test(NAME CApi.${variant}
    COMMAND bash -c "rm -rf \"$1\" && exec \"$0\" \"$1\""
            $<TARGET_FILE:c_api_test_${variant}> ${CMAKE_CURRENT_BINARY_DIR}/c_api_work_${variant})
  set_tests_properties(CApi.${variant} PROPERTIES TIMEOUT 300)
endforeach()
target_link_libraries(c_api_test_static PRIVATE sealwal::c)
target_link_libraries(c_api_test_shared PRIVATE sealwal_c_shared)
# A sanitized libsealwal.so needs UBSan's C++ runtime, which only the C++
# driver links (clang's C driver links the C part alone).
if(SEALWAL_SANITIZE OR SEALWAL_BUILD_FUZZ)
  set_target_properties(c_api_test_shared PROPERTIES LINKER_LANGUAGE CXX)
endif()
