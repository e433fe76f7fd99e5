# Installs zinx.pc. The file is written at install time, not configure
# time, so that `cmake --install --prefix DIR` puts DIR in it rather than
# the prefix the tree was configured with.
#
# Stage one (now) fills in everything but the prefix; the prefix becomes
# a literal @CMAKE_INSTALL_PREFIX@ for stage two, which the install script
# fills in with the prefix in force when it runs.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(ZINX_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
    set(ZINX_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(ZINX_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
    set(ZINX_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(ZINX_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")

set(zinx_pc_template "${CMAKE_CURRENT_BINARY_DIR}/zinx.pc.template")
set(zinx_pc_out "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/zinx.pc")
configure_file("${CMAKE_CURRENT_SOURCE_DIR}/zinx.pc.in"
               "${zinx_pc_template}" @ONLY)

install(CODE "configure_file(\"${zinx_pc_template}\" \"${zinx_pc_out}\" @ONLY)")
install(FILES "${zinx_pc_out}"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
