# install(EXPORT) of vmrt::vmrt with a package config and version file, so that
# `find_package(vmrt)` works from a separate project (proven by the `meta.package_consumer` test).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# INCLUDES DESTINATION is load-bearing: lib/CMakeLists.txt reads CMAKE_INSTALL_INCLUDEDIR in its
# $<INSTALL_INTERFACE:...> before this file includes GNUInstallDirs, so on a fresh configure that
# entry is empty and this line is what gives vmrt::vmrt its installed include directory.
install(TARGETS vmrt EXPORT vmrtTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Headers only: editor backups or notes dropped into include/ must not become part of the package.
install(DIRECTORY include/vmrt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(TARGETS vmrt-cli vmrt-fake-guest RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT vmrtTargets NAMESPACE vmrt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vmrt)

configure_package_config_file(cmake/vmrtConfig.cmake.in ${PROJECT_BINARY_DIR}/vmrtConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vmrt)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/vmrtConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/vmrtConfig.cmake ${PROJECT_BINARY_DIR}/vmrtConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vmrt)
