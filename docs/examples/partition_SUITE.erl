%%% partition_SUITE: an example common_test suite that splits a 3-node
%%% cluster with epmdpxy and checks what `global' and `pg' do about it.
%%%
%%% Copy it next to epmdpxy_ctl.erl. Run it with (see docs/erlang.md):
%%%
%%%   erlc -o ebin epmdpxy_ctl.erl
%%%   EPMDPXY=/path/to/epmdpxy ct_run -dir . -pa ebin -logdir logs
%%%
%%% The cluster: three `peer' nodes (OTP 25+), controlled over their
%%% standard input and output (`connection => standard_io'), so the
%%% common_test node is never connected to them and cannot bridge the
%%% islands. Each node gets `-start_epmd false' and ERL_EPMD_PORT of the
%%% suite's own epmdpxy, and `net_ticktime' 2 so a cut shows as `nodedown'
%%% after about 2 seconds. Nodes keep the default `connect_all' (what a
%%% real cluster does): a node that connects to one member connects to all.
%%%
%%% What OTP 25 does, as these tests assert:
%%% - `global': when the cut is seen, every node drops the names whose
%%%   process lives on the other side. Each island can then register the
%%%   same name again. After the fix and a reconnect, global merges the two
%%%   registrations and resolves the clash with the default resolver,
%%%   global:random_exit_name/3, which despite its name is not random: the
%%%   process on the node whose name sorts first is kept, the other one is
%%%   killed, and every node agrees on the survivor.
%%% - `pg': members on the other side disappear from every group as soon
%%%   as the nodedown is seen, and come back when the nodes reconnect.
%%% - Nothing reconnects by itself after a fix: the suite pings.
-module(partition_SUITE).

%% Only stdlib's assert.hrl: Debian ships common_test's ct.hrl (for
%% ?config) in erlang-dev, so this suite reads Config with proplists.
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([global_name_clash_is_resolved_after_heal/1,
         pg_groups_split_and_merge/1]).

%% How long a cut or a reconnect may take to show everywhere. A cut shows
%% within about net_ticktime (2 s); a reconnect in well under a second.
-define(CONVERGE_MS, 20000).
-define(COOKIE, "epmdpxy_example").

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [global_name_clash_is_resolved_after_heal, pg_groups_split_and_merge].

init_per_suite(Config) ->
    %% The binary: $EPMDPXY, else epmdpxy on PATH. -v logs node, link and
    %% fault events; end_per_testcase copies them into the test log.
    {ok, Proxy} = epmdpxy_ctl:start(#{args => ["-v"]}),
    [{epmdpxy, Proxy} | Config].

end_per_suite(Config) ->
    epmdpxy_ctl:stop(proplists:get_value(epmdpxy, Config)).

init_per_testcase(_Case, Config) ->
    Proxy = proplists:get_value(epmdpxy, Config),
    ok = epmdpxy_ctl:heal(Proxy),
    Peers = [start_peer(Proxy, Base) || Base <- ["n1", "n2", "n3"]],
    connect_mesh(Peers),
    [{peers, Peers} | Config].

end_per_testcase(_Case, Config) ->
    [peer:stop(Peer) || {Peer, _Node} <- proplists:get_value(peers, Config)],
    Proxy = proplists:get_value(epmdpxy, Config),
    ct:log("epmdpxy log:~n~ts", [lists:join("\n", epmdpxy_ctl:log(Proxy))]),
    epmdpxy_ctl:heal(Proxy).

%%--------------------------------------------------------------------
%% Test cases
%%--------------------------------------------------------------------

global_name_clash_is_resolved_after_heal(Config) ->
    [{P1, N1}, {P2, N2}, {P3, N3}] = Peers = proplists:get_value(peers, Config),
    Proxy = proplists:get_value(epmdpxy, Config),

    %% A process on n1 holds the global name; every node sees it.
    Old = sleeper(P1),
    yes = peer:call(P1, global, register_name, [leader, Old]),
    await("everyone sees the old leader",
          fun() -> [whereis_leader(P) || {P, _} <- Peers] end,
          [Old, Old, Old]),

    %% n1 alone on one side, n2 and n3 on the other.
    ok = epmdpxy_ctl:cut(Proxy, [[N1], [N2, N3]]),
    await_views([{P1, []}, {P2, [N3]}, {P3, [N2]}]),

    %% The majority lost the name with n1 (global drops it on nodedown,
    %% a moment after nodes/0 changes); n1 still has it.
    await("the name is gone on the other side",
          fun() -> [whereis_leader(P) || {P, _} <- Peers] end,
          [Old, undefined, undefined]),
    %% The majority registers its own leader.
    New = sleeper(P2),
    yes = peer:call(P2, global, register_name, [leader, New]),
    await("n3 sees the new leader", fun() -> whereis_leader(P3) end, New),

    %% Fix and reconnect: global finds two registrations of one name. The
    %% default resolver, global:random_exit_name/3, is not random: it keeps
    %% the process on the node whose name sorts first (n1-... < n2-...)
    %% and kills the other one.
    ok = epmdpxy_ctl:fix(Proxy, [[N1], [N2, N3]]),
    connect_mesh(Peers),
    await("everyone agrees on the old leader again",
          fun() -> [whereis_leader(P) || {P, _} <- Peers] end,
          [Old, Old, Old]),
    await("the new leader was killed",
          fun() -> peer:call(P2, erlang, is_process_alive, [New]) end,
          false),
    ?assert(peer:call(P1, erlang, is_process_alive, [Old])).

pg_groups_split_and_merge(Config) ->
    [{P1, N1}, {P2, N2}, {P3, N3}] = Peers = proplists:get_value(peers, Config),
    Proxy = proplists:get_value(epmdpxy, Config),

    %% One member of group `workers' on each node, in the scope `demo'.
    [begin
         {ok, _} = peer:call(P, pg, start, [demo]),
         ok = peer:call(P, pg, join, [demo, workers, sleeper(P)])
     end || {P, _} <- Peers],
    await("every node sees three workers",
          fun() -> [member_count(P) || {P, _} <- Peers] end, [3, 3, 3]),

    ok = epmdpxy_ctl:cut(Proxy, [[N1], [N2, N3]]),
    await_views([{P1, []}, {P2, [N3]}, {P3, [N2]}]),
    await("each island sees only its own workers",
          fun() -> [member_count(P) || {P, _} <- Peers] end, [1, 2, 2]),

    ok = epmdpxy_ctl:fix(Proxy, [[N1], [N2, N3]]),
    connect_mesh(Peers),
    await("the groups merge again",
          fun() -> [member_count(P) || {P, _} <- Peers] end, [3, 3, 3]).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Starts a peer node registered with the suite's epmdpxy.
start_peer(Proxy, Base) ->
    Name = peer:random_name(Base),
    {ok, Peer, Node} =
        peer:start_link(#{name => Name,
                          connection => standard_io,
                          args => epmdpxy_ctl:node_args(Proxy) ++
                              ["-setcookie", ?COOKIE,
                               "-kernel", "net_ticktime", "2"],
                          env => epmdpxy_ctl:node_env(Proxy)}),
    {Peer, Node}.

%% A process on the peer that lives until it is killed.
sleeper(Peer) ->
    peer:call(Peer, erlang, spawn, [timer, sleep, [infinity]]).

whereis_leader(Peer) ->
    peer:call(Peer, global, whereis_name, [leader]).

member_count(Peer) ->
    length(peer:call(Peer, pg, get_members, [demo, workers])).

%% Pings until every node sees every other one. Links are opened lazily,
%% and while a mesh forms `global' may drop a fresh link to prevent
%% overlapping partitions, so missing links are retried on every poll.
connect_mesh(Peers) ->
    All = [Node || {_, Node} <- Peers],
    await("a full mesh",
          fun() ->
                  [begin
                       Seen = peer:call(P, erlang, nodes, []),
                       [peer:call(P, net_adm, ping, [Other], 10000)
                        || Other <- All -- [Node | Seen]],
                       lists:sort(peer:call(P, erlang, nodes, []))
                   end || {P, Node} <- Peers]
          end,
          [lists:sort(All -- [Node]) || {_, Node} <- Peers]).

%% Waits until each peer sees exactly the given nodes.
await_views(Expected) ->
    await("the islands",
          fun() -> [lists:sort(peer:call(P, erlang, nodes, [])) || {P, _} <- Expected] end,
          [lists:sort(Nodes) || {_, Nodes} <- Expected]).

%% Polls Fun every 100 ms until it returns Want; fails after ?CONVERGE_MS
%% with the last value seen.
await(What, Fun, Want) ->
    await(What, Fun, Want, erlang:monotonic_time(millisecond) + ?CONVERGE_MS).

await(What, Fun, Want, Deadline) ->
    case Fun() of
        Want ->
            ok;
        Got ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    ct:fail("timed out waiting for ~ts: want ~p, got ~p",
                            [What, Want, Got]);
                false ->
                    timer:sleep(100),
                    await(What, Fun, Want, Deadline)
            end
    end.
