# What `cmake --install` puts under the prefix (and scripts/package into the
# .deb): the two programs, the client library and its headers, the test kit,
# the proto contract, and the CMake package `videotask` with the targets
# videotask::client and videotask::testing.
include(CMakePackageConfigHelpers)

set(VT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/videotask")
set(VT_INSTALL_PROTODIR "${CMAKE_INSTALL_DATADIR}/videotask/proto")

install(TARGETS videotaskd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES proto/videotask/v1/video_task_service.proto
        DESTINATION "${VT_INSTALL_PROTODIR}/videotask/v1")

if(VT_BUILD_CLIENT)
  install(TARGETS videotask RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(TARGETS videotask_client videotask_testing EXPORT videotaskTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY client/lib/include/ client/testing/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(FILES "${PROJECT_BINARY_DIR}/generated/videotask/version.h"
          DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/videotask")
  install(FILES "${PROJECT_BINARY_DIR}/proto/videotask/v1/video_task_service.pb.h"
                "${PROJECT_BINARY_DIR}/proto/videotask/v1/video_task_service.grpc.pb.h"
          DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/videotask/v1")
  install(EXPORT videotaskTargets NAMESPACE videotask:: DESTINATION "${VT_INSTALL_CMAKEDIR}")
  configure_package_config_file(packaging/videotaskConfig.cmake.in
    "${PROJECT_BINARY_DIR}/packaging/videotaskConfig.cmake"
    INSTALL_DESTINATION "${VT_INSTALL_CMAKEDIR}"
    PATH_VARS CMAKE_INSTALL_BINDIR VT_INSTALL_PROTODIR)
  write_basic_package_version_file("${PROJECT_BINARY_DIR}/packaging/videotaskConfigVersion.cmake"
    COMPATIBILITY SameMinorVersion)
  install(FILES "${PROJECT_BINARY_DIR}/packaging/videotaskConfig.cmake"
                "${PROJECT_BINARY_DIR}/packaging/videotaskConfigVersion.cmake"
          DESTINATION "${VT_INSTALL_CMAKEDIR}")
endif()
