# The Lua scripts, one file each; the headers that declare them (and document their contracts).
# budstikke_embed_lua_scripts(OUTPUT): a rule that writes OUTPUT, a .cpp holding every script's
# source and SHA1 (embed.cmake), for budstikke_queue and for the fuzz build.
set(BUDSTIKKE_LUA_SCRIPTS
  append_events
  move_due_retries
  record_outcomes
  requeue_dead
  take_tokens
  transition
  withdraw_consent
  work_left
)
set(BUDSTIKKE_LUA_DIR ${CMAKE_CURRENT_LIST_DIR})

function(budstikke_embed_lua_scripts output)
  set(lua_files "")
  foreach(name IN LISTS BUDSTIKKE_LUA_SCRIPTS)
    list(APPEND lua_files ${BUDSTIKKE_LUA_DIR}/${name}.lua)
  endforeach()
  set(lua_headers queue/schema.hpp queue/consent.hpp queue/rate_limit.hpp queue/consumer.hpp)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} "-DSCRIPTS=${lua_files}"
            "-DHEADERS=${lua_headers}" -P ${BUDSTIKKE_LUA_DIR}/embed.cmake
    DEPENDS ${lua_files} ${BUDSTIKKE_LUA_DIR}/embed.cmake
    COMMENT "Embedding queue/scripts/*.lua"
    VERBATIM)
endfunction()
