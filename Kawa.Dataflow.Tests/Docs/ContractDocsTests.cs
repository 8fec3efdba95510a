using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/pipeline.md lists which implementations the contract fixtures cover: it must name every fixture.</summary>
public class ContractDocsTests
{
    [Test]
    public void PipelineDoc_ContractFixtureTable_NamesEveryFixture()
    {
        var doc = File.ReadAllText(Path.Combine(DuckDb.Root, "docs", "pipeline.md"));
        var fixtures = typeof(ContractDocsTests).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && DerivesFrom(t, typeof(SourceContractTests<>), typeof(DestinationContractTests<>)))
            .Select(t => t.Name)
            .ToList();

        Assert.That(fixtures, Has.Count.GreaterThanOrEqualTo(20), "the fixtures are found");
        Assert.That(fixtures.Where(name => !doc.Contains($"`{name}`", StringComparison.Ordinal)), Is.Empty, "fixtures missing from docs/pipeline.md's contract table");
    }

    private static bool DerivesFrom(Type type, params Type[] genericBases)
    {
        for (var t = type.BaseType; t is not null; t = t.BaseType)
        {
            if (t.IsGenericType && genericBases.Contains(t.GetGenericTypeDefinition()))
            {
                return true;
            }
        }

        return false;
    }
}
