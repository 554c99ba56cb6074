//! Building the index: products analysed on worker threads, written to
//! tantivy, the term FST and the stock side table made.

use super::*;

impl Catalog {
    pub(super) fn build(
        builder: CatalogBuilder,
        products: Vec<Product>,
    ) -> Result<Catalog, CatalogError> {
        let mut schema = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer("loket_terms")
            .set_index_option(IndexRecordOption::WithFreqs);
        // Length normalisation makes short, specific names win ("Olijfboom"
        // over "Olijfboom meerstammig op stam"). Expansion fields are long
        // for exactly the products that have many common names; normalising
        // them would punish a product for being well known, so they go
        // without field norms.
        let normed = TextOptions::default().set_indexing_options(indexing.clone());
        let flat = TextOptions::default().set_indexing_options(indexing.set_fieldnorms(false));
        let fields = Fields {
            ord: schema.add_u64_field("ord", FAST),
            name: schema.add_text_field("name", normed.clone()),
            latin: schema.add_text_field("latin", normed.clone()),
            alias: schema.add_text_field("alias", normed.clone()),
            syn: schema.add_text_field("syn", flat.clone()),
            head: schema.add_text_field("head", normed.clone()),
            part: schema.add_text_field("part", flat.clone()),
            stem: schema.add_text_field("stem", flat),
            full: schema.add_text_field("full", normed),
        };
        let schema = schema.build();
        let index = match &builder.directory {
            Some(dir) => Index::create_in_dir(dir, schema)?,
            None => Index::create_in_ram(schema),
        };
        index
            .tokenizers()
            .register("loket_terms", TextAnalyzer::from(WhitespaceTokenizer::default()));

        let shared = Shared::new(&products, &builder.synonyms, &builder.names);
        // Later duplicates of a sku are dropped.
        let mut seen: FxSet<&str> = FxSet::default();
        let keep: Vec<bool> = products.iter().map(|p| seen.insert(p.sku.as_str())).collect();
        drop(seen);
        let mut interner = Interner::default();
        let mut tagged_terms: Vec<Box<[u32]>> = Vec::with_capacity(products.len());
        let threads = builder.threads;
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(threads, threads * 40_000_000)?;
        // Analysis runs on its own thread, ahead of the thread that interns
        // terms and feeds tantivy, whose own threads build the segments.
        std::thread::scope(|scope| -> Result<(), CatalogError> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Analysed>(1024);
            let (shared, products, keep) = (&shared, &products, &keep);
            scope.spawn(move || {
                let analyzer = Analyzer::new(shared);
                for (product, _) in products.iter().zip(keep).filter(|(_, k)| **k) {
                    if tx.send(analyzer.analyse(product)).is_err() {
                        break; // The receiver failed and returned early.
                    }
                }
            });
            let mut line = String::new();
            let mut ids: Vec<u32> = Vec::new();
            for a in rx {
                let Ok(ord) = u32::try_from(tagged_terms.len()) else { break };
                let mut tagged: Vec<u32> = Vec::new();
                let mut doc = TantivyDocument::default();
                doc.add_u64(fields.ord, u64::from(ord));
                for (field, tag, terms) in [
                    (fields.name, F_NAME, &a.name),
                    (fields.latin, F_LATIN, &a.latin),
                    (fields.alias, F_ALIAS, &a.alias),
                    (fields.syn, F_SYN, &a.syn),
                    (fields.head, F_HEAD, &a.head),
                    (fields.part, F_PART, &a.part),
                    (fields.stem, F_STEM, &a.stem),
                    (fields.full, F_FULL, &a.full),
                ] {
                    if terms.is_empty() {
                        continue;
                    }
                    ids.clear();
                    ids.extend(terms.iter().map(|t| interner.id(t, tag)));
                    ids.sort_unstable();
                    ids.dedup();
                    line.clear();
                    for &id in &ids {
                        tagged.push(id << TAG_BITS | tag);
                        if !line.is_empty() {
                            line.push(' ');
                        }
                        line.push_str(interner.terms.get(id as usize).map_or("", |t| &**t));
                    }
                    doc.add_text(field, &line);
                }
                writer.add_document(doc)?;
                tagged.sort_unstable();
                tagged.dedup();
                tagged_terms.push(tagged.into_boxed_slice());
            }
            Ok(())
        })?;
        writer.commit()?;
        let mut entries: Vec<Entry> = Vec::with_capacity(tagged_terms.len());
        let mut by_sku: FxMap<Arc<str>, u32> = FxMap::default();
        let kept = products.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p));
        for (ord, (product, terms)) in (0u32..).zip(kept.zip(tagged_terms)) {
            let sku: Arc<str> = product.sku.as_str().into();
            by_sku.insert(sku.clone(), ord);
            entries.push(Entry {
                sku,
                name: product.name.as_str().into(),
                stock: AtomicI64::new(product.stock),
                price: AtomicU64::new(product.price_cents.unwrap_or(NO_PRICE)),
                terms,
                product,
            });
        }
        writer.wait_merging_threads()?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let searcher = reader.searcher();
        Ok(Catalog {
            _index: index,
            searcher,
            fields,
            entries,
            by_sku,
            surface: interner.surface_fst()?,
            lexicon: interner.ids,
            terms: interner.terms,
            masks: interner.masks,
        })
    }
}
