namespace Kawa.Dataflow.Perf;

/// <summary>Dispatches to a named scenario.</summary>
internal static class ScenarioRunner
{
    private static readonly Dictionary<string, Func<string[], Task<int>>> Scenarios = new(StringComparer.Ordinal)
    {
        ["memory-passthrough"] = MemoryPassthrough.RunAsync,
        ["memory-json"] = MemoryJson.RunAsync,
        ["parquet"] = ParquetScenario.RunAsync,
        ["nats-pubsub"] = Nats.NatsPerfScenarios.PubSubAsync,
        ["jetstream-publish"] = Nats.NatsPerfScenarios.JetStreamPublishAsync,
        ["jetstream-consume"] = Nats.NatsPerfScenarios.JetStreamConsumeAsync,
        ["e2e"] = E2e.E2eScenario.RunAsync,
    };

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || !Scenarios.TryGetValue(args[0], out var run))
        {
            await Console.Error.WriteLineAsync($"usage: perf <scenario> [options]; scenarios: {string.Join(", ", Scenarios.Keys.Order(StringComparer.Ordinal))}").ConfigureAwait(false);
            return 2;
        }

        return await run(args[1..]).ConfigureAwait(false);
    }
}
