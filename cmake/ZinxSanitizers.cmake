# ZINX_SANITIZE selects one sanitizer build for the whole tree:
#   ""        none
#   "address" AddressSanitizer + UndefinedBehaviorSanitizer; any report
#             is fatal (-fno-sanitize-recover=all)
#   "thread"  ThreadSanitizer
# The flags go on every target (compile and link) because a sanitizer
# must instrument the library and the programs that drive it alike.
# ZINX_SANITIZE_ADDRESS / ZINX_SANITIZE_THREAD are defined so that a test
# can skip what a sanitizer cannot run (for example rlimit games).
if(ZINX_SANITIZE STREQUAL "")
    return()
elseif(ZINX_SANITIZE STREQUAL "address")
    set(zinx_sanitize_flags
        -fsanitize=address,undefined
        -fno-sanitize-recover=all
        -fno-omit-frame-pointer)
    add_compile_definitions(ZINX_SANITIZE_ADDRESS=1)
elseif(ZINX_SANITIZE STREQUAL "thread")
    set(zinx_sanitize_flags
        -fsanitize=thread
        -fno-omit-frame-pointer)
    add_compile_definitions(ZINX_SANITIZE_THREAD=1)
else()
    message(FATAL_ERROR
        "ZINX_SANITIZE must be empty, 'address' or 'thread', "
        "not '${ZINX_SANITIZE}'")
endif()

if(NOT CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "ZINX_SANITIZE needs gcc or clang")
endif()

add_compile_options(${zinx_sanitize_flags})
add_link_options(${zinx_sanitize_flags})
message(STATUS "zinx: sanitizer build '${ZINX_SANITIZE}'")
