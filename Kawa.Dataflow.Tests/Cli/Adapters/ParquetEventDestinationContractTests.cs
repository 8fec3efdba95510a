using System.Text;
using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Tests.Cli.Adapters;

/// <summary>The core destination contract against kawa's <c>parquet</c> destination (default columns) on a real local
/// lake: durable means a committed file holds the event's key. Writes are broken by a real OS failure: the lake directory
/// is moved away and a file put in its place, so opening and committing files fails.</summary>
internal sealed class ParquetEventDestinationContractTests : DestinationContractTests<EventRecord>
{
    protected override DestinationContract<EventRecord> Contract { get; } = new ParquetEventContract();

    internal sealed class ParquetEventContract : DestinationContract<EventRecord>
    {
        protected override Message<EventRecord> CreateMessage(int index) => new(new EventRecord(Encoding.UTF8.GetBytes($"event-{index}")), Key: $"k{index}");

        protected override async ValueTask<DestinationUnderTest<EventRecord>> CreateAsync()
        {
            var root = Directory.CreateTempSubdirectory("kawa-parquet-contract-").FullName;
            var lake = Path.Combine(root, "lake");
            var destination = await ParquetEventDestination.CreateAsync(
                new ParquetDestinationOptions { Type = "parquet", Path = lake, Fsync = false },
                deadLetter: false,
                TimeProvider.System,
                NullLoggerFactory.Instance,
                CancellationToken.None);
            return new DestinationUnderTest<EventRecord>
            {
                Destination = destination,
                IsDurable = m => CommittedKeys(lake).Contains(m.Key),
                BreakWrites = () =>
                {
                    Directory.Move(lake, lake + ".moved");
                    File.WriteAllText(lake, "not a directory");
                },
                Cleanup = async () =>
                {
                    try
                    {
                        await ((IAsyncDisposable)destination).DisposeAsync();
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        // A broken lake may fail the last commit again at dispose.
                    }

                    Directory.Delete(root, recursive: true);
                },
            };
        }

        /// <summary>The keys of every row in the lake's committed files (temporary names start with a dot).</summary>
        internal static HashSet<string?> CommittedKeys(string lake)
        {
            var keys = new HashSet<string?>();
            if (!Directory.Exists(lake))
            {
                return keys;
            }

            foreach (var file in Directory.EnumerateFiles(lake, "*.parquet", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.')))
            {
                var reader = ParquetReader.OpenAsync(file).GetAwaiter().GetResult();
                try
                {
                    var key = reader.Schema.Fields.Select(f => f.Name).ToList().IndexOf("key");
                    for (var group = 0; group < reader.RowGroups.Count; group++)
                    {
                        foreach (var row in reader.ReadRowGroupAsync(group).GetAwaiter().GetResult())
                        {
                            keys.Add(row[key] as string);
                        }
                    }
                }
                finally
                {
                    reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
                }
            }

            return keys;
        }
    }
}
