# Places the built kernels module beside the sources (edgesdk/), as `build_ext --inplace` does,
# so that Python started in the repository root (where ./edgesdk shadows the installed package)
# finds them too. Run after every build of _native:
#   cmake -DSRC=<built module> -DDEST=<source folder> -P inplace.cmake
# Written under a temporary name, then renamed: a Python importing it meanwhile never sees half
# a file. A read-only checkout only warns: the installed package does not need this copy.
get_filename_component(name "${SRC}" NAME)
set(tmp "${DEST}/.${name}.tmp")
file(COPY_FILE "${SRC}" "${tmp}" RESULT copied)
if(copied EQUAL 0)
  file(RENAME "${tmp}" "${DEST}/${name}" RESULT renamed)
endif()
if(NOT copied EQUAL 0 OR NOT renamed EQUAL 0)
  file(REMOVE "${tmp}")
  message(WARNING "edgesdk: could not place ${name} in ${DEST} (${copied} ${renamed}); "
                  "Python started in the repository root will not find the kernels there")
endif()
