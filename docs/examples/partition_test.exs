# partition_test.exs: an example ExUnit test that splits a 3-node cluster
# with epmdpxy and checks what the nodes and `:global` see.
#
# Run it on its own (see docs/elixir.md):
#
#   EPMDPXY=/path/to/epmdpxy elixir -r epmdpxy_ctl.ex partition_test.exs
#
# In a mix project, drop the `ExUnit.start()` line (test_helper.exs does
# that) and put epmdpxy_ctl.ex in test/support/.
#
# The cluster: three `:peer` nodes (OTP 25+) controlled over their standard
# input and output (`connection: :standard_io`), so the test VM needs no
# distribution and never bridges the islands. Each node gets
# `-start_epmd false` and ERL_EPMD_PORT of the test's own epmdpxy, and
# `net_ticktime` 2 so a cut shows as `nodedown` after about 2 seconds.
# The peers are plain Erlang nodes: call Erlang modules on them
# (`:erlang.nodes/0`, not `Node.list/0`), or give them Elixir's code path
# (see `start_peer/2`).
ExUnit.start()

defmodule PartitionTest do
  use ExUnit.Case, async: false

  # A cut shows within about net_ticktime (2 s); a reconnect in well under
  # a second.
  @converge_ms 20_000
  @cookie ~c"epmdpxy_example"

  setup_all do
    # The binary: $EPMDPXY, else epmdpxy on PATH.
    {:ok, pxy} = EpmdpxyCtl.start(args: ["-v"])
    on_exit(fn -> EpmdpxyCtl.stop(pxy) end)
    %{pxy: pxy}
  end

  setup %{pxy: pxy} do
    :ok = EpmdpxyCtl.heal(pxy)
    # start_link: the peers stop when the test process exits.
    peers = for base <- [:n1, :n2, :n3], do: start_peer(pxy, base)
    connect_mesh(peers)
    %{peers: peers}
  end

  test "a cut splits the cluster, global forgets the far side, a fix joins it again",
       %{pxy: pxy, peers: peers} do
    [{p1, n1}, {p2, n2}, {p3, n3}] = peers

    # A process on n1 holds a global name; every node sees it.
    leader = :peer.call(p1, :erlang, :spawn, [:timer, :sleep, [:infinity]])
    :yes = :peer.call(p1, :global, :register_name, [:leader, leader])
    await(fn -> for {p, _} <- peers, do: whereis_leader(p) end, [leader, leader, leader])

    :ok = EpmdpxyCtl.cut(pxy, [[n1], [n2, n3]])
    {:ok, faults} = EpmdpxyCtl.status(pxy)
    assert "cut #{n1} | #{n2}" in faults
    # Every live link across the cut is held.
    :ok = EpmdpxyCtl.wait_for_blocked(pxy, [[n1], [n2, n3]], 5_000)

    # n1 is alone; n2 and n3 still see each other.
    await(fn -> views(peers) end, [[], [n3], [n2]])
    # The name lives on n1 only now.
    await(fn -> for {p, _} <- peers, do: whereis_leader(p) end, [leader, :undefined, :undefined])

    # Nothing reconnects by itself after a fix: connect_mesh pings.
    :ok = EpmdpxyCtl.fix(pxy, [[n1], [n2, n3]])
    connect_mesh(peers)
    await(fn -> for {p, _} <- peers, do: whereis_leader(p) end, [leader, leader, leader])
    assert :peer.call(p2, :erlang, :nodes, []) |> Enum.sort() == Enum.sort([n1, n3])
    assert :peer.call(p3, :erlang, :nodes, []) |> Enum.sort() == Enum.sort([n1, n2])
  end

  test "the control port says why it refuses a command", %{pxy: pxy} do
    assert {:error, "unknown command 'frob' (try help)"} = EpmdpxyCtl.command(pxy, "frob")
    assert {:error, _why} = EpmdpxyCtl.cut(pxy, "n1 | n1")
    # A name no node has is an error, and nothing is left in force...
    assert {:error, {:not_registered, ["nobody", "other"]}} = EpmdpxyCtl.cut(pxy, "nobody | other")
    assert {:ok, []} = EpmdpxyCtl.status(pxy)
    # ...unless the cut is meant for nodes still to come.
    assert :ok = EpmdpxyCtl.cut(pxy, "nobody | other", pending: true)
    assert {:ok, ["cut nobody | other"]} = EpmdpxyCtl.status(pxy)
    assert {:error, "no such fault in force" <> _} = EpmdpxyCtl.fix(pxy, "nobody | elsewhere")
    :ok = EpmdpxyCtl.heal(pxy)
    assert {:ok, _summary, help} = EpmdpxyCtl.request(pxy, "help")
    assert Enum.any?(help, &String.starts_with?(&1, "cut "))
  end

  # Starts a peer node registered with the test's epmdpxy.
  defp start_peer(pxy, base) do
    args =
      EpmdpxyCtl.node_args(pxy) ++
        [~c"-setcookie", @cookie, ~c"-kernel", ~c"net_ticktime", ~c"2"] ++
        # Elixir's code path, so the peer can run Elixir code too.
        Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start_link(%{
        name: :peer.random_name(base),
        connection: :standard_io,
        args: args,
        env: EpmdpxyCtl.node_env(pxy)
      })

    {peer, node}
  end

  defp whereis_leader(peer), do: :peer.call(peer, :global, :whereis_name, [:leader])

  defp views(peers), do: for({p, _} <- peers, do: Enum.sort(:peer.call(p, :erlang, :nodes, [])))

  # Pings until every node sees every other one. Links are opened lazily,
  # and while a mesh forms `:global` may drop a fresh link to prevent
  # overlapping partitions, so missing links are retried on every poll.
  defp connect_mesh(peers) do
    all = for {_, node} <- peers, do: node
    want = for {_, node} <- peers, do: Enum.sort(all -- [node])

    await(
      fn ->
        for {p, node} <- peers do
          seen = :peer.call(p, :erlang, :nodes, [])
          for other <- all -- [node | seen], do: :peer.call(p, :net_adm, :ping, [other], 10_000)
          Enum.sort(:peer.call(p, :erlang, :nodes, []))
        end
      end,
      want
    )
  end

  # Polls fun every 100 ms until it returns want; fails after @converge_ms
  # with the last value seen.
  defp await(fun, want, deadline \\ nil) do
    deadline = deadline || System.monotonic_time(:millisecond) + @converge_ms

    case fun.() do
      ^want ->
        :ok

      got ->
        if System.monotonic_time(:millisecond) > deadline do
          flunk("timed out: want #{inspect(want)}, got #{inspect(got)}")
        else
          Process.sleep(100)
          await(fun, want, deadline)
        end
    end
  end
end
