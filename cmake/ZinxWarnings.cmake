# Warning set for every C target in the tree (library, tests, examples,
# bench). Directory-wide so that a new subdirectory cannot forget it; it
# is not part of any exported target, so consumers never see it.
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    add_compile_options(
        $<$<COMPILE_LANGUAGE:C>:-Wall>
        $<$<COMPILE_LANGUAGE:C>:-Wextra>
        $<$<COMPILE_LANGUAGE:C>:-Wshadow>
        $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes>
        $<$<COMPILE_LANGUAGE:C>:-Wmissing-prototypes>)
    if(ZINX_WERROR)
        add_compile_options($<$<COMPILE_LANGUAGE:C>:-Werror>)
    endif()
endif()
