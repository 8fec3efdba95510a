// Scenario runner: `dotnet run -c Release --project perf -- <scenario> [options]`.
// Each scenario prints progress, then one JSON object as its last line.
using Kawa.Dataflow.Perf;

return await ScenarioRunner.RunAsync(args).ConfigureAwait(false);
