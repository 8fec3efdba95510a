using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>The tables dictionary encoding shares between files (a key type of its own, so no writer uses this pool).</summary>
public class DictionaryPoolTests
{
    private readonly record struct Key(int Value);

    [Test]
    public void Rent_AfterReturn_SameTableClearedWithCapacityKept()
    {
        var comparer = EqualityComparer<Key>.Default;
        var table = DictionaryPool<Key>.Rent(comparer);
        for (var i = 0; i < 5000; i++)
        {
            table[new Key(i)] = i;
        }

        var capacity = table.EnsureCapacity(0);
        var returned = table;
        DictionaryPool<Key>.Return(ref returned);

        var again = DictionaryPool<Key>.Rent(comparer);

        Assert.That(returned, Is.Null, "the caller's reference is cleared");
        Assert.That(again, Is.SameAs(table));
        Assert.That(again, Is.Empty);
        Assert.That(again.EnsureCapacity(0), Is.EqualTo(capacity));
        DictionaryPool<Key>.Return(ref again);
    }

    [Test]
    public void Rent_OtherComparer_NewTable()
    {
        var table = DictionaryPool<Key>.Rent(EqualityComparer<Key>.Default);
        var kept = table;
        DictionaryPool<Key>.Return(ref table);

        var other = DictionaryPool<Key>.Rent(new ValueComparer());

        Assert.That(other, Is.Not.SameAs(kept));
        Assert.That(other.Comparer, Is.TypeOf<ValueComparer>());
    }

    [Test]
    public void Return_MoreThanKept_KeepsAtMostKept()
    {
        var comparer = EqualityComparer<Key>.Default;
        var tables = Enumerable.Range(0, DictionaryPool<Key>.Kept + 10).Select(_ => DictionaryPool<Key>.Rent(comparer)).ToList();
        var all = new HashSet<Dictionary<Key, int>>(tables, ReferenceEqualityComparer.Instance);
        foreach (var t in tables)
        {
            var table = t;
            DictionaryPool<Key>.Return(ref table);
        }

        var reused = Enumerable.Range(0, DictionaryPool<Key>.Kept + 10).Select(_ => DictionaryPool<Key>.Rent(comparer)).Count(all.Contains);

        Assert.That(reused, Is.EqualTo(DictionaryPool<Key>.Kept));
    }

    private sealed class ValueComparer : IEqualityComparer<Key>
    {
        public bool Equals(Key x, Key y) => x.Value == y.Value;

        public int GetHashCode(Key obj) => obj.Value;
    }
}
